"""Bounded readers of untrusted bytes: one ``.npy`` array and the members of an ``.npz``.

Everything is read without pickle, so a file can never run code, and every size is checked
before memory is taken for it: a file is limited to ``MAX_UPLOAD_BYTES`` (20 MiB) before
parsing; a ``.npy`` header's shape and dtype before its data is read; an ``.npz``'s members
once unpacked, each stored or deflated (what ``np.savez`` / ``np.savez_compressed``
write) and inflated with an explicit output limit, so a member that declares a small size
but holds more (a zip bomb) is refused after at most the limit, whatever it declares.
Member names must be unambiguous (``q.npy`` twice, or ``q`` next to ``q.npy``, is refused).
Arrays have at most ``MAX_NDIM`` (4) dimensions. Accepted dtypes are float16, bfloat16
(``ml_dtypes``; NumPy writes it to ``.npy`` as the 2-byte void ``|V2``, which is read back
as bfloat16; any other void is refused), float32, float64 and integers of at most 2**53 in
size (larger ones, and wider floats such as float128, are refused). Complex, bool, string,
date, structured and object arrays are refused. Every failure raises ``UploadError`` (a
``ValueError``) whose message names the file or array and says what was expected, cut to
``MAX_MESSAGE_CHARS``, ready to show to a user.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from tokenize import TokenError

import ml_dtypes
import numpy as np

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


def mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def check_nbytes(n_bytes: int, filename: str) -> None:
    if n_bytes > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} is {n_bytes:,} bytes ({mib(n_bytes)}); uploads are limited to "
            f"{MAX_UPLOAD_BYTES:,} bytes ({mib(MAX_UPLOAD_BYTES)}). Save a smaller slice "
            f"(fewer rows) or a lower precision (float32)."
        )


def as_bytes(data: object, filename: str) -> bytes:
    """``data`` (bytes, bytearray, memoryview, a uint8 array...) as bytes, size checked first."""
    if isinstance(data, bytes):
        check_nbytes(len(data), filename)
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError as exc:
        raise UploadError(
            f"{filename}: expected the file's bytes (bytes, bytearray, memoryview or a uint8 "
            f"array), got {type(data).__name__}."
        ) from exc
    check_nbytes(view.nbytes, filename)
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
            f"{mib(MAX_UPLOAD_BYTES)}. Save a smaller slice."
        )
    count = math.prod(shape)
    n_bytes, available = count * dtype.itemsize, len(data) - fp.tell()
    if n_bytes > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{label} has shape {shape} of {dtype}: {mib(n_bytes)}, over the "
            f"{mib(MAX_UPLOAD_BYTES)} limit. Save a smaller slice."
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
            (index,) = first_bad(beyond)
            raise UploadError(
                f"{label} has {int(beyond.sum())} integer entries beyond 2^53 in size (the "
                f"first at flat index {index}: {flat[index]}), which float64 cannot hold "
                f"exactly. Scale them down, or save floats."
            )
    return flat.reshape(shape, order="F" if fortran else "C")


def first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in np.argwhere(mask)[0])


def name_list(names: list[str], limit: int = 8) -> str:
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
            f"{label} unpacks to more than {mib(limit)} (it declares "
            f"{info.file_size:,} bytes); the whole .npz may unpack to at most "
            f"{mib(MAX_UPLOAD_BYTES)}. Save fewer rows."
        )
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        raise UploadError(
            f"{label} cannot be unpacked: its size or checksum differs from what the archive "
            f"declares; the file is damaged."
        )
    return out


def npz_members(
    data: bytes, filename: str, expected: tuple[str, ...], hint: str
) -> dict[str, bytes]:
    """The .npy entries of an .npz, by array name: exactly the arrays ``expected``, each
    unpacked within what is left of ``MAX_UPLOAD_BYTES``; ``hint`` ends each message."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise UploadError(
            f"{filename} is not a valid .npz file (a zip archive of .npy files): "
            f"{short_name(str(exc), 120)}. It may be truncated. {hint}."
        ) from exc
    names: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name in names:
            raise UploadError(
                f"{filename} holds two members for array {short_name(name, 24)!r} "
                f"({short_name(names[name].filename, 24)!r} and "
                f"{short_name(info.filename, 24)!r}); which one is meant is ambiguous. "
                f"{hint}."
            )
        names[name] = info
    missing = [n for n in expected if n not in names]
    extra = sorted(set(names) - set(expected))
    if missing or extra:
        found = name_list(sorted(names)) if names else "no arrays"
        extras = name_list(extra) if extra else "none"
        wanted = ", ".join(expected[:-1]) + " and " + expected[-1]
        raise UploadError(
            f"{filename} must hold exactly the arrays {wanted} (names are case-sensitive); "
            f"found {found}: missing {missing or 'none'}, extra {extras}. {hint}."
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{filename} unpacks to {mib(unpacked)}, over the {mib(MAX_UPLOAD_BYTES)} "
            f"limit. Save fewer rows."
        )
    members, left = {}, MAX_UPLOAD_BYTES
    for name in expected:
        members[name] = _inflate(data, names[name], left, f"{filename}: array '{name}'")
        left -= len(members[name])
    return members
