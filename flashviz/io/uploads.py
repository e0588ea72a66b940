"""Read a user's own arrays from uploaded bytes, safely, with one clear message per failure.

Accepted files (every one read without pickle, so a file can never run code):

- Q, K, V for the stepper (``read_qkv`` / ``load_qkv``): an ``.npz`` (``np.savez`` or
  ``np.savez_compressed``) holding exactly the arrays ``q`` (n_q, d), ``k`` (n_k, d) and
  ``v`` (n_k, d); or one ``.npy`` of shape (3, n, d) stacking q, k, v (then n_q = n_k);
  or three ``.npy`` files (``load_qkv_files``). Leading dims of size 1 are dropped, so
  (1, 1, n, d) is one head. The stepper's limits apply: d <= ``MAX_HEAD_DIM`` (256) and
  n_q * n_k <= ``MAX_CELLS`` (512 x 512); entries must be finite.
- a score row for the debugger: a ``.npy`` holding a 1-D array of real numbers, finite or
  ``-inf`` (a masked key); NaN and ``+inf`` are refused (``load_score_row``).

The content decides the format, not the file name. Files are read by the bounded readers
of ``flashviz.io.bounded_read`` (their size limits, accepted dtypes and messages: every
failure raises its ``UploadError``, ready to show to a user). The shapes of q, k and v are
checked against the stepper's limits before any conversion; together they take at most
``MAX_UPLOAD_BYTES`` once converted to float64, and are kept in their own dtype until then
(``QKVUpload.arrays``). The conversion to float64 is exact for every accepted dtype, so the
trace shows the uploaded values themselves, in float64 arithmetic. ``data`` may be any
bytes-like object (``bytes``, ``memoryview``, a uint8 array).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from flashviz.io.bounded_read import (
    MAX_UPLOAD_BYTES,
    NPY_MAGIC,
    UploadError,
    as_bytes,
    first_bad,
    mib,
    npz_members,
    read_npy_raw,
    short_name,
)
from flashviz.lab.budget import MAX_CELLS, MAX_HEAD_DIM, suggest_size
from flashviz.lab.problem_spec import ProblemSpec


def load_score_row(
    data: bytes | memoryview, filename: str, max_len: int | None = None
) -> np.ndarray:
    """A score row s (n,) from a .npy file: finite or -inf (masked) entries; float64.

    Raises ``UploadError`` for a file over the size limit, anything that is not a .npy of
    real numbers, an array that is not 1-D, is empty or longer than ``max_len``, and NaN or
    +inf entries. The shape is checked before the row is converted to float64.
    """
    filename = short_name(filename)
    raw = read_npy_raw(as_bytes(data, filename), filename)
    if raw.ndim != 1:
        raise UploadError(
            f"{filename} must hold one score row of shape (n,), got shape {raw.shape}; "
            f"save a single row, e.g. np.save(f, s[0])."
        )
    if raw.size == 0:
        raise UploadError(f"{filename} holds an empty row (shape (0,)); a row needs n >= 1.")
    if max_len is not None and raw.size > max_len:
        raise UploadError(
            f"{filename} holds {raw.size} scores; the debugger takes at most {max_len}. "
            f"Save a slice, e.g. np.save(f, s[:{max_len}])."
        )
    row = raw.astype(np.float64)
    bad = np.isnan(row) | (row == np.inf)
    if bad.any():
        (index,) = first_bad(bad)
        raise UploadError(
            f"{filename} has {int(bad.sum())} NaN or +inf entries (the first at index "
            f"{index}: {row[index]}); scores must be finite, or -inf for a masked key."
        )
    return row


# --- Q, K, V for the stepper -------------------------------------------------------------

QKV_NAMES = ("q", "k", "v")
_SHAPES = {"q": "(n_q, d)", "k": "(n_k, d)", "v": "(n_k, d)"}
_SAVE_HINT = "Save them with np.savez(f, q=q, k=k, v=v)"


@dataclass(frozen=True)
class QKVUpload:
    """Validated q (n_q, d), k and v (n_k, d) in the dtypes they came in (kept compact:
    int8 stays int8); ``arrays`` converts them to float64 when asked."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray

    @property
    def source_dtypes(self) -> tuple[str, str, str]:
        return str(self.q.dtype), str(self.k.dtype), str(self.v.dtype)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """q, k, v in float64 (exact for every accepted dtype), converted on each call."""
        return self.q.astype(np.float64), self.k.astype(np.float64), self.v.astype(np.float64)

    def summary(self) -> str:
        """One sentence for the user: shapes and the dtype conversion."""
        dtypes = sorted(set(self.source_dtypes))
        note = "kept as float64" if dtypes == ["float64"] else "converted to float64"
        return (
            f"q {self.q.shape}, k {self.k.shape}, v {self.v.shape} "
            f"(n_q = {self.q.shape[0]}, n_k = {self.k.shape[0]}, d = {self.q.shape[1]}); "
            f"{', '.join(dtypes)}, {note}."
        )


def _as_head(name: str, arr: np.ndarray, label: str) -> np.ndarray:
    """One head (n, d): leading dims of size 1 are dropped; empty arrays refused."""
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]  # (1, ..., n, d) -> (..., n, d)
    if arr.ndim != 2:
        hint = "pick one head, e.g. x[0, 0]" if arr.ndim > 2 else "reshape it to (n, d)"
        raise UploadError(
            f"{label} must have shape {_SHAPES[name]} (one head), got shape {arr.shape}; {hint}."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UploadError(
            f"{label} has shape {arr.shape}: it needs at least one row and one column "
            f"({_SHAPES[name]} with n >= 1, d >= 1)."
        )
    return arr


def _check_finite(label: str, arr: np.ndarray, source_dtype: str) -> None:
    finite = np.isfinite(arr)
    if finite.all():
        return
    index = first_bad(~finite)
    hint = " (float16 overflows to inf above 65504)" if source_dtype == "float16" else ""
    raise UploadError(
        f"{label} has {int(finite.size - finite.sum())} NaN or Inf entries, the first at "
        f"index {index} = {arr[index]}{hint}; q, k and v must be finite."
    )


def _check_problem(q: np.ndarray, k: np.ndarray, v: np.ndarray, labels: list[str]) -> None:
    """Matching shapes, then the stepper's limits (``flashviz.lab.problem``)."""
    (n_q, d), n_k = q.shape, k.shape[0]
    if k.shape[1] != d:
        raise UploadError(
            f"{labels[1]} must have head dim d = {d} like q, i.e. shape ({n_k}, {d}); "
            f"got shape {k.shape}."
        )
    if v.shape != (n_k, d):
        raise UploadError(
            f"{labels[2]} must have the shape of k, (n_k, d) = ({n_k}, {d}); got shape {v.shape}."
        )
    if d > MAX_HEAD_DIM:
        raise UploadError(
            f"Head dim d = {d} is above {MAX_HEAD_DIM}, the most the stepper traces; "
            f"upload a head with d <= {MAX_HEAD_DIM} (e.g. 64 or 128)."
        )
    if n_q * n_k > MAX_CELLS:
        a, b, _, _ = suggest_size(ProblemSpec(n_q=n_q, n_k=n_k, head_dim=d, block_q=1, block_kv=1))
        raise UploadError(
            f"q and k give n_q x n_k = {n_q} x {n_k} = {n_q * n_k:,} scores; the stepper "
            f"traces at most {MAX_CELLS:,} (512 x 512). Upload fewer rows, e.g. "
            f"q[:{a}], k[:{b}], v[:{b}]."
        )
    as_float64 = (n_q + 2 * n_k) * d * 8
    if as_float64 > MAX_UPLOAD_BYTES:
        rows = max(1, MAX_UPLOAD_BYTES // (8 * d * 3))
        raise UploadError(
            f"q, k and v hold {(n_q + 2 * n_k) * d:,} numbers: {mib(as_float64)} once "
            f"converted to float64 for the trace, over the {mib(MAX_UPLOAD_BYTES)} limit. "
            f"Upload fewer rows, e.g. about {rows:,} each."
        )


def _validated(raw: dict[str, np.ndarray], labels: list[str]) -> QKVUpload:
    """Shapes first (no conversion before they pass), then finiteness in the own dtype."""
    q, k, v = (_as_head(n, raw[n], lab) for n, lab in zip(QKV_NAMES, labels, strict=True))
    _check_problem(q, k, v, labels)
    for label, arr in zip(labels, (q, k, v), strict=True):
        _check_finite(label, arr, str(np.dtype(arr.dtype)))
    return QKVUpload(q, k, v)


def read_qkv(data: bytes | memoryview, filename: str) -> QKVUpload:
    """q, k, v from one uploaded file: an .npz with arrays q, k, v, or a stacked .npy.

    - ``.npz`` (``np.savez`` or ``np.savez_compressed``) holding exactly ``q`` (n_q, d),
      ``k`` (n_k, d) and ``v`` (n_k, d);
    - ``.npy`` of shape (3, n, d): q, k, v stacked (so n_q = n_k = n).

    The content decides the format, not the file name. Leading dims of size 1 are dropped
    ((1, 1, n, d) is one head). Limits: ``MAX_UPLOAD_BYTES``, d <= ``MAX_HEAD_DIM`` and
    n_q * n_k <= ``MAX_CELLS`` (the stepper's limits).
    """
    filename = short_name(filename)
    data = as_bytes(data, filename)
    if data.startswith(b"PK"):
        members = npz_members(data, filename, QKV_NAMES, _SAVE_HINT)
        labels = [f"{filename}: array '{n}'" for n in QKV_NAMES]
        raw = {n: read_npy_raw(members[n], lab) for n, lab in zip(QKV_NAMES, labels, strict=True)}
        return _validated(raw, labels)
    if not data.startswith(NPY_MAGIC):
        raise UploadError(
            f"{filename} is neither an .npz (zip) nor a .npy file. {_SAVE_HINT} "
            f"or np.save(f, np.stack([q, k, v]))."
        )
    stacked = read_npy_raw(data, filename)
    while stacked.ndim > 3 and stacked.shape[0] == 1:
        stacked = stacked[0]
    if stacked.ndim < 3 or stacked.shape[0] != 3:
        raise UploadError(
            f"{filename} must stack q, k, v as one array of shape (3, n, d), got shape "
            f"{stacked.shape}. For n_q != n_k, or separate arrays: {_SAVE_HINT} (.npz)."
        )
    labels = [f"{filename}[{t}] ({n})" for t, n in enumerate(QKV_NAMES)]
    return _validated(dict(zip(QKV_NAMES, stacked, strict=True)), labels)


def load_qkv(data: bytes | memoryview, filename: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, k, v) in float64 from an .npz or a stacked .npy; see ``read_qkv``."""
    return read_qkv(data, filename).arrays


def load_qkv_files(
    q_bytes: bytes,
    k_bytes: bytes,
    v_bytes: bytes,
    filenames: tuple[str, str, str] = ("q.npy", "k.npy", "v.npy"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, k, v) in float64 from three .npy files, each limited to ``MAX_UPLOAD_BYTES``."""
    labels = [f"{name} ({short_name(f)})" for name, f in zip(QKV_NAMES, filenames, strict=True)]
    raw = {}
    for name, data, label in zip(QKV_NAMES, (q_bytes, k_bytes, v_bytes), labels, strict=True):
        raw[name] = read_npy_raw(as_bytes(data, label), label)
    return _validated(raw, labels).arrays


def qkv_digest(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> str:
    """The SHA-256 (64 hex digits) of uploaded tensors' shapes and float64 values: a cache
    key, never truncated."""
    h = hashlib.sha256()
    for x in (q, k, v):
        x = np.ascontiguousarray(x, dtype=np.float64)
        h.update(repr(x.shape).encode())
        h.update(x.tobytes())
    return h.hexdigest()
