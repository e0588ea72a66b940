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
``MAX_UPLOAD_BYTES`` (20 MiB), checked before parsing; an ``.npz`` also once unpacked: its
members must be stored or deflated (what ``np.savez`` / ``np.savez_compressed`` write) and
are inflated with an explicit output limit, so a member that declares a small size but
holds more (a zip bomb) is refused after at most the limit, whatever it declares. Member
names must be unambiguous (``q.npy`` twice, or ``q`` next to ``q.npy``, is refused).
Arrays have at most ``MAX_NDIM`` (4) dimensions; each array's announced size is checked
before its data is read, and the shapes of q, k, v against the stepper's limits before
any conversion; q, k and v together take at most ``MAX_UPLOAD_BYTES`` once converted to
float64, and are kept in their own dtype until then (``QKVUpload.arrays``).
``data`` may be any bytes-like object (``bytes``, ``memoryview``, a uint8 array).
Accepted dtypes are float16, bfloat16 (``ml_dtypes``; NumPy writes it to ``.npy`` as the
2-byte void ``|V2``, which is read back as bfloat16; any other void is refused), float32,
float64 and integers of at most 2**53 in size (larger ones, and wider floats such as
float128, are refused); every array is converted to float64 for the trace, which is exact
for all of them,
so the trace shows the uploaded values themselves, in float64 arithmetic. Complex, bool,
string, date, structured and object arrays are refused. Every failure raises
``UploadError`` (a ``ValueError``) whose message names the file or array and says what was
expected, ready to show to a user.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from tokenize import TokenError

import ml_dtypes
import numpy as np

from flashviz.lab.budget import MAX_CELLS, MAX_HEAD_DIM, suggest_size
from flashviz.lab.problem_spec import ProblemSpec

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB: per file, and per .npz once unpacked
MAX_NDIM = 4  # (1, 1, n, d) is one head; (1, 3, n, d) a stack
MAX_MESSAGE_CHARS = 600  # an error message stays short whatever the file holds
MAX_NAME_CHARS = 60  # a file or member name is shown at most this long
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
EXACT_INT = 2**53  # integers up to this size convert to float64 exactly
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
    """An uploaded file cannot be used; the message says why and what is expected.

    The message is cut to ``MAX_MESSAGE_CHARS``, whatever the file holds.
    """

    def __init__(self, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "\u2026"
        super().__init__(message)


def short_name(name: str, limit: int = MAX_NAME_CHARS) -> str:
    """A user-supplied name cut to ``limit`` characters (an ellipsis marks the cut)."""
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def _check_nbytes(n_bytes: int, filename: str) -> None:
    if n_bytes > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} is {n_bytes:,} bytes ({_mib(n_bytes)}); uploads are limited to "
            f"{MAX_UPLOAD_BYTES:,} bytes ({_mib(MAX_UPLOAD_BYTES)}). Save a smaller slice "
            f"(fewer rows) or a lower precision (float32)."
        )


def as_bytes(data: object, filename: str) -> bytes:
    """``data`` (bytes, bytearray, memoryview, a uint8 array...) as bytes, size checked first."""
    if isinstance(data, bytes):
        _check_nbytes(len(data), filename)
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError as exc:
        raise UploadError(
            f"{filename}: expected the file's bytes (bytes, bytearray, memoryview or a uint8 "
            f"array), got {type(data).__name__}."
        ) from exc
    _check_nbytes(view.nbytes, filename)
    return view.tobytes()


def _header(fp: io.BytesIO, label: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Parse a .npy header: (shape, fortran_order, dtype); never touches the data."""
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fp)
        if version in ((2, 0), (3, 0)):
            # 2.0 and 3.0 share the 4-byte header length; 3.0 differs only in utf-8 field
            # names, and structured arrays are refused anyway
            return np.lib.format.read_array_header_2_0(fp)
    except (ValueError, SyntaxError, EOFError, TypeError, RecursionError, TokenError) as exc:
        raise UploadError(
            f"{label} is not a valid .npy file: its header is unreadable "
            f"({short_name(str(exc), 120)})."
        ) from exc
    raise UploadError(
        f"{label} is a .npy file of format version {version[0]}.{version[1]}; versions 1.0, "
        f"2.0 and 3.0 are read (what np.save writes)."
    )


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
    if dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize <= 8):
        return dtype
    kind = _KIND_NAMES.get(dtype.kind, str(dtype))
    shown = str(dtype) if kind == str(dtype) else f"{dtype} ({kind})"
    raise UploadError(
        f"{label} has dtype {shown}; expected real numbers: float16, bfloat16, "
        f"float32, float64 or integers (of at most 2^53 in size)."
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
    if len(shape) > MAX_NDIM:
        raise UploadError(
            f"{label} has {len(shape)} dimensions; at most {MAX_NDIM} are accepted "
            f"((1, 1, n, d) is one head). Save one head of shape (n, d)."
        )
    dtype = _checked_dtype(dtype, label)
    if any(n < 0 for n in shape):
        raise UploadError(f"{label} is not a valid .npy file: negative shape {shape}.")
    if any(n > MAX_UPLOAD_BYTES for n in shape):
        raise UploadError(
            f"{label} has shape {shape}: a dimension over {MAX_UPLOAD_BYTES:,} cannot fit in "
            f"{_mib(MAX_UPLOAD_BYTES)}. Save a smaller slice."
        )
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
    if dtype.kind in "iu" and dtype.itemsize > 4:  # int32 and smaller fit float64 exactly
        beyond = (flat > EXACT_INT) | (flat < -EXACT_INT)
        if beyond.any():
            (index,) = _first_bad(beyond)
            raise UploadError(
                f"{label} has {int(beyond.sum())} integer entries beyond 2^53 in size (the "
                f"first at flat index {index}: {flat[index]}), which float64 cannot hold "
                f"exactly. Scale them down, or save floats."
            )
    return flat.reshape(shape, order="F" if fortran else "C")


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in np.argwhere(mask)[0])


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
    """Validated q (n_q, d), k and v (n_k, d) in the dtypes they came in (kept compact:
    int8 stays int8); ``arrays`` converts them to float64 when asked."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray

    @property
    def source_dtypes(self) -> tuple[str, str, str]:
        return tuple(str(np.dtype(x.dtype)) for x in (self.q, self.k, self.v))  # type: ignore[return-value]

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """q, k, v in float64 (exact for every accepted dtype), converted on each call."""
        return tuple(x.astype(np.float64) for x in (self.q, self.k, self.v))  # type: ignore[return-value]

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
            f"q, k and v hold {(n_q + 2 * n_k) * d:,} numbers: {_mib(as_float64)} once "
            f"converted to float64 for the trace, over the {_mib(MAX_UPLOAD_BYTES)} limit. "
            f"Upload fewer rows, e.g. about {rows:,} each."
        )


def _validated(raw: dict[str, np.ndarray], labels: list[str]) -> QKVUpload:
    """Shapes first (no conversion before they pass), then finiteness in the own dtype."""
    q, k, v = (_as_head(n, raw[n], lab) for n, lab in zip(QKV_NAMES, labels, strict=True))
    _check_problem(q, k, v, labels)
    for label, arr in zip(labels, (q, k, v), strict=True):
        _check_finite(label, arr, str(np.dtype(arr.dtype)))
    return QKVUpload(q, k, v)


def _names(names: list[str], limit: int = 8) -> str:
    """At most ``limit`` names, each cut short, and how many more there are."""
    shown = [short_name(n, 24) for n in names[:limit]]
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return f"{shown}{more}"


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def _inflate(data: bytes, info: zipfile.ZipInfo, limit: int, label: str) -> bytes:
    """A member's bytes, stored or deflated, never more than ``limit`` of them.

    The declared sizes are not trusted: deflate is inflated with an output limit of
    ``limit + 1`` bytes and anything past ``limit`` is refused.
    """
    if info.flag_bits & 0x1:
        raise UploadError(f"{label} is encrypted; save it with np.savez.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise UploadError(
            f"{label} is compressed with zip method {info.compress_type}; only stored and "
            f"deflate members are accepted (what np.savez and np.savez_compressed write)."
        )
    at = info.header_offset
    if at < 0 or at + _LOCAL_HEADER.size > len(data):
        raise UploadError(f"{label} cannot be unpacked: its header is outside the file.")
    magic, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, at)
    start = at + _LOCAL_HEADER.size + name_len + extra_len
    if magic != ZIP_MAGIC or start + info.compress_size > len(data):
        raise UploadError(f"{label} cannot be unpacked: the file is damaged or truncated.")
    raw = data[start : start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        out = raw
    else:
        inflater = zlib.decompressobj(-15)
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise UploadError(
                f"{label} cannot be unpacked ({exc}); the file is damaged or truncated."
            ) from exc
        if len(out) <= limit and not inflater.eof:
            raise UploadError(f"{label} cannot be unpacked: its compressed data is truncated.")
    if len(out) > limit:
        raise UploadError(
            f"{label} unpacks to more than {_mib(limit)} (it declares "
            f"{info.file_size:,} bytes); the whole .npz may unpack to at most "
            f"{_mib(MAX_UPLOAD_BYTES)}. Save fewer rows."
        )
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        raise UploadError(
            f"{label} cannot be unpacked: its size or checksum differs from what the archive "
            f"declares; the file is damaged."
        )
    return out


def _npz_members(data: bytes, filename: str) -> dict[str, bytes]:
    """The .npy entries of an .npz, by array name, after the name and size checks."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UploadError(
            f"{filename} is not a valid .npz file (a zip archive of .npy files): "
            f"{short_name(str(exc), 120)}. It may be truncated. {_SAVE_HINT}."
        ) from exc
    names: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name in names:
            raise UploadError(
                f"{filename} holds two members for array {short_name(name, 24)!r} "
                f"({short_name(names[name].filename, 24)!r} and "
                f"{short_name(info.filename, 24)!r}); which one is meant is ambiguous. "
                f"{_SAVE_HINT}."
            )
        names[name] = info
    missing = [n for n in QKV_NAMES if n not in names]
    extra = sorted(set(names) - set(QKV_NAMES))
    if missing or extra:
        found = _names(sorted(names)) if names else "no arrays"
        extras = _names(extra) if extra else "none"
        raise UploadError(
            f"{filename} must hold exactly the arrays q, k and v (names are case-sensitive); "
            f"found {found}: missing {missing or 'none'}, extra {extras}. {_SAVE_HINT}."
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} unpacks to {_mib(unpacked)}, over the {_mib(MAX_UPLOAD_BYTES)} "
            f"limit. Save fewer rows."
        )
    members, left = {}, MAX_UPLOAD_BYTES
    for name in QKV_NAMES:
        members[name] = _inflate(data, names[name], left, f"{filename}: array '{name}'")
        left -= len(members[name])
    return members


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
