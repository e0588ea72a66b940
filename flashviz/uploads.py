"""Read a user's own arrays from uploaded bytes, safely, with one clear message per failure.

Accepted files (every one read without pickle, so a file can never run code):

- a score row for the debugger: a ``.npy`` holding a 1-D array of real numbers, finite or
  ``-inf`` (a masked key); NaN and ``+inf`` are refused (``load_score_row``).

Files are limited to ``MAX_UPLOAD_BYTES`` (20 MiB). Accepted dtypes are float16, bfloat16
(``ml_dtypes``; NumPy writes it to ``.npy`` as the 2-byte void ``|V2``, which is read back as
bfloat16), float32, float64 and integers; every array is converted to float64, which is
exact for all of them (integers up to 2**53). Complex, bool, string, date, structured and
object arrays are refused. Every failure raises ``UploadError`` (a ``ValueError``) whose
message names the file or array and says what was expected, ready to show to a user.
"""

from __future__ import annotations

import io
import math

import ml_dtypes
import numpy as np

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # 20 MiB, for the file and for the arrays it unpacks to
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
            f"{filename} is {_mib(len(data))}; uploads are limited to "
            f"{_mib(MAX_UPLOAD_BYTES)}. Save a smaller slice (fewer rows) or a lower "
            f"precision (float32)."
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
    raise UploadError(
        f"{label} has dtype {dtype} ({kind}); expected real numbers: float16, bfloat16, "
        f"float32, float64 or integers."
    )


def read_npy(data: bytes, label: str) -> np.ndarray:
    """One array from .npy bytes, as float64, without pickle; ``label`` names it in errors."""
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
    if count * 8 > MAX_UPLOAD_BYTES:  # 8 bytes per entry once converted to float64
        raise UploadError(
            f"{label} has shape {shape}: {count:,} entries, {_mib(count * 8)} as float64, "
            f"over the {_mib(MAX_UPLOAD_BYTES)} limit. Save a smaller slice."
        )
    if available < n_bytes:
        raise UploadError(
            f"{label} is truncated: its header announces shape {shape} of {dtype} "
            f"({n_bytes:,} bytes) but only {available:,} bytes follow. Upload the whole file."
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=fp.tell())
    return flat.reshape(shape, order="F" if fortran else "C").astype(np.float64)


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
