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

The content decides the format, not the file name. Files are limited to
``MAX_UPLOAD_BYTES`` (20 MiB), checked before parsing; an ``.npz`` also once unpacked, and
each array's announced size before its data is read. Accepted dtypes are float16, bfloat16
(``ml_dtypes``; NumPy writes it to ``.npy`` as the 2-byte void ``|V2``, which is read back as
bfloat16; any other void is refused), float32, float64 and integers; every array is
converted to float64 for the trace, which is exact for all of them (integers up to 2**53),
so the trace shows the uploaded values themselves, in float64 arithmetic. Complex, bool,
string, date, structured and object arrays are refused. Every failure raises
``UploadError`` (a ``ValueError``) whose message names the file or array and says what was
expected, ready to show to a user.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
import zlib
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from flashviz.problem import MAX_CELLS, MAX_HEAD_DIM, ProblemSpec, suggest_size

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: per file, and per .npz once unpacked
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
_KIND_NAMES = {
    "b": "bool",
    "c": "complex",
    "O": "object (pickled Python objects)",
    "S": "bytes",
    "U": "string",
    "M": "datetime",
    "m": "timedelta",
    "V": "void (raw bytes)",
}


class UploadError(ValueError):
    """An uploaded file cannot be used; the message says why and what is expected."""


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def check_size(data: bytes, filename: str) -> None:
    """Refuse files over ``MAX_UPLOAD_BYTES`` before parsing anything."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} is {len(data):,} bytes ({_mib(len(data))}); uploads are limited to "
            f"{MAX_UPLOAD_BYTES:,} bytes ({_mib(MAX_UPLOAD_BYTES)}). Save a smaller slice "
            f"(fewer rows) or a lower precision (float32)."
        )


def _header(fp: io.BytesIO, label: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a .npy header: (shape, fortran_order, dtype); never touches the data."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        # versions 2.0 and 3.0 share the 4-byte header length; 3.0 differs only in utf-8
        # field names, and structured arrays are refused anyway
        return np.lib.format.read_array_header_2_0(fp)
    except (ValueError, SyntaxError, EOFError, TypeError) as exc:
        raise UploadError(
            f"{label} is not a valid .npy file: its header is unreadable ({exc})."
        ) from exc


def _checked_dtype(dtype: np.dtype, label: str) -> np.dtype:
    """The dtype to read the data with: real floats and integers only; |V2 is bfloat16."""
    if dtype.hasobject:
        raise UploadError(
            f"{label} holds Python objects (dtype object), which would need pickle to load; "
            f"uploads are read with allow_pickle=False. Save a numeric array instead: "
            f"np.save(f, np.asarray(x, dtype=np.float32))."
        )
    if dtype.names is not None or dtype.subdtype is not None:
        raise UploadError(
            f"{label} is a structured array (dtype {dtype}); save a plain float array."
        )
    if dtype.kind == "V" and dtype.itemsize == 2:
        return np.dtype(ml_dtypes.bfloat16)  # how np.save writes bfloat16
    if dtype.kind in "fiu":
        return dtype
    kind = _KIND_NAMES.get(dtype.kind, dtype.kind)
    shown = str(dtype) if kind == str(dtype) else f"{dtype} ({kind})"
    raise UploadError(
        f"{label} has dtype {shown}; expected real numbers: float16, bfloat16, "
        f"float32, float64 or integers."
    )


def read_npy_raw(data: bytes, label: str) -> np.ndarray:
    """One array from .npy bytes in its own dtype (|V2 read as bfloat16), without pickle."""
    if not data.startswith(NPY_MAGIC):
        raise UploadError(
            f"{label} is not a .npy file (it does not start with the NumPy magic bytes "
            f"\\x93NUMPY); save it with np.save."
        )
    fp = io.BytesIO(data)
    shape, fortran, dtype = _header(fp, label)
    dtype = _checked_dtype(dtype, label)
    if any(n < 0 for n in shape):
        raise UploadError(f"{label} is not a valid .npy file: negative shape {shape}.")
    count = math.prod(shape)
    n_bytes, available = count * dtype.itemsize, len(data) - fp.tell()
    if n_bytes > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{label} has shape {shape} of {dtype}: {_mib(n_bytes)}, over the "
            f"{_mib(MAX_UPLOAD_BYTES)} limit. Save a smaller slice."
        )
    if available < n_bytes:
        raise UploadError(
            f"{label} is truncated: its header announces shape {shape} of {dtype} "
            f"({n_bytes:,} bytes) but only {available:,} bytes follow. Upload the whole file."
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=fp.tell())
    return flat.reshape(shape, order="F" if fortran else "C")


def read_npy(data: bytes, label: str) -> np.ndarray:
    """One array from .npy bytes, as float64, without pickle; ``label`` names it in errors."""
    return read_npy_raw(data, label).astype(np.float64)


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in np.argwhere(mask)[0])


def load_score_row(data: bytes, filename: str) -> np.ndarray:
    """A score row s (n,) from a .npy file: finite or -inf (masked) entries; float64.

    Raises ``UploadError`` for a file over the size limit, anything that is not a .npy of
    real numbers, an array that is not 1-D or is empty, and NaN or +inf entries.
    """
    check_size(data, filename)
    row = read_npy(data, filename)
    if row.ndim != 1:
        raise UploadError(
            f"{filename} must hold one score row of shape (n,), got shape {row.shape}; "
            f"save a single row, e.g. np.save(f, s[0])."
        )
    if row.size == 0:
        raise UploadError(f"{filename} holds an empty row (shape (0,)); a row needs n >= 1.")
    bad = np.isnan(row) | (row == np.inf)
    if bad.any():
        (index,) = _first_bad(bad)
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
    """Validated q (n_q, d), k and v (n_k, d) in float64, and the dtypes they came in."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    source_dtypes: tuple[str, str, str]

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.q, self.k, self.v

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
    index = _first_bad(~finite)
    hint = " (float16 overflows to inf above 65504)" if source_dtype == "float16" else ""
    raise UploadError(
        f"{label} has {int(finite.size - finite.sum())} NaN or Inf entries, the first at "
        f"index {index} = {arr[index]}{hint}; q, k and v must be finite."
    )


def _check_problem(q: np.ndarray, k: np.ndarray, v: np.ndarray, labels: list[str]) -> None:
    """Matching shapes, then the stepper's limits (``flashviz.problem``)."""
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


def _validated(raw: dict[str, np.ndarray], labels: list[str]) -> QKVUpload:
    heads = [_as_head(n, raw[n], lab) for n, lab in zip(QKV_NAMES, labels, strict=True)]
    source = tuple(str(np.dtype(a.dtype)) for a in heads)
    q, k, v = (a.astype(np.float64) for a in heads)
    _check_problem(q, k, v, labels)
    for label, arr, dtype in zip(labels, (q, k, v), source, strict=True):
        _check_finite(label, arr, dtype)
    return QKVUpload(q, k, v, source)  # type: ignore[arg-type]


def _npz_members(data: bytes, filename: str) -> dict[str, bytes]:
    """The .npy entries of an .npz, by array name, after the key and size checks."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UploadError(
            f"{filename} is not a valid .npz file (a zip archive of .npy files): {exc}. "
            f"It may be truncated. {_SAVE_HINT}."
        ) from exc
    names = {info.filename.removesuffix(".npy"): info for info in infos}
    missing = [n for n in QKV_NAMES if n not in names]
    extra = sorted(set(names) - set(QKV_NAMES))
    if missing or extra:
        found = sorted(names) or "no arrays"
        raise UploadError(
            f"{filename} must hold exactly the arrays q, k and v (names are case-sensitive); "
            f"found {found}: missing {missing or 'none'}, extra {extra or 'none'}. {_SAVE_HINT}."
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} unpacks to {_mib(unpacked)}, over the {_mib(MAX_UPLOAD_BYTES)} "
            f"limit. Save fewer rows."
        )
    members = {}
    for name in QKV_NAMES:
        try:
            members[name] = archive.read(names[name])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError) as exc:
            raise UploadError(
                f"{filename}: array '{name}' cannot be unpacked ({exc}); the file is damaged "
                f"or truncated."
            ) from exc
        except NotImplementedError as exc:  # an unsupported compression method
            raise UploadError(f"{filename}: array '{name}' cannot be unpacked ({exc}).") from exc
    return members


def read_qkv(data: bytes, filename: str) -> QKVUpload:
    """q, k, v from one uploaded file: an .npz with arrays q, k, v, or a stacked .npy.

    - ``.npz`` (``np.savez`` or ``np.savez_compressed``) holding exactly ``q`` (n_q, d),
      ``k`` (n_k, d) and ``v`` (n_k, d);
    - ``.npy`` of shape (3, n, d): q, k, v stacked (so n_q = n_k = n).

    The content decides the format, not the file name. Leading dims of size 1 are dropped
    ((1, 1, n, d) is one head). Limits: ``MAX_UPLOAD_BYTES``, d <= ``MAX_HEAD_DIM`` and
    n_q * n_k <= ``MAX_CELLS`` (the stepper's limits).
    """
    check_size(data, filename)
    if data.startswith(b"PK"):
        members = _npz_members(data, filename)
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


def load_qkv(data: bytes, filename: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, k, v) in float64 from an .npz or a stacked .npy; see ``read_qkv``."""
    return read_qkv(data, filename).arrays


def load_qkv_files(
    q_bytes: bytes,
    k_bytes: bytes,
    v_bytes: bytes,
    filenames: tuple[str, str, str] = ("q.npy", "k.npy", "v.npy"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, k, v) in float64 from three .npy files, each limited to ``MAX_UPLOAD_BYTES``."""
    labels = [f"{name} ({f})" for name, f in zip(QKV_NAMES, filenames, strict=True)]
    raw = {}
    for name, data, label in zip(QKV_NAMES, (q_bytes, k_bytes, v_bytes), labels, strict=True):
        check_size(data, label)
        raw[name] = read_npy_raw(data, label)
    return _validated(raw, labels).arrays


def qkv_digest(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> str:
    """16 hex digits identifying uploaded tensors (shapes and float64 values): a cache key."""
    h = hashlib.sha256()
    for x in (q, k, v):
        x = np.ascontiguousarray(x, dtype=np.float64)
        h.update(repr(x.shape).encode())
        h.update(x.tobytes())
    return h.hexdigest()[:16]
