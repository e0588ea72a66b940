"""Uploads: every bad file kind is refused with its own message; good files round-trip."""

from __future__ import annotations

import bz2
import io
import struct
import tracemalloc
import zipfile
import zlib
from typing import Protocol

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from numpy.typing import DTypeLike

from flashviz import attention_reference, record_trace
from flashviz.io.bounded_read import MAX_UPLOAD_BYTES, UploadError
from flashviz.io.uploads import load_qkv, load_qkv_files, load_score_row, qkv_digest, read_qkv

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.int8, np.int64, ">f4"]


def npy(x: np.ndarray, allow_pickle: bool = True) -> bytes:
    f = io.BytesIO()
    np.save(f, x, allow_pickle=allow_pickle)
    return f.getvalue()


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    f = io.BytesIO()
    # allow_pickle named (numpy's default) so that no array of **arrays can be taken for it
    (np.savez_compressed if compressed else np.savez)(f, allow_pickle=True, **arrays)
    return f.getvalue()


def zip_of(**members: bytes) -> bytes:
    """A zip of ``members``, the same bytes on every call (its members dated 1980-01-01, not
    now: the bytes name parametrized tests, and every xdist worker must see the same names)."""
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return f.getvalue()


def qkv(rng: np.random.Generator, n_q: int = 5, n_k: int = 7, d: int = 3, dtype=np.float32):
    return tuple(
        (rng.standard_normal((n, d)) * 3).astype(dtype) for n in (n_q, n_k, n_k)
    )  # q (n_q, d), k and v (n_k, d)


def npy_header_only(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy whose header announces ``shape`` but which carries 16 bytes of data."""
    f = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + bytes(16)


def with_nan(x: np.ndarray, index: tuple[int, int], value: float = np.nan) -> np.ndarray:
    x = x.copy()
    x[index] = value
    return x


def expect(data: bytes, pattern: str, filename: str = "up.npz") -> None:
    with pytest.raises(UploadError, match=pattern):
        load_qkv(data, filename)


# --- score rows -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_score_row_round_trips_exactly(rng: np.random.Generator, dtype: DTypeLike) -> None:
    row = (rng.standard_normal(11) * 5).astype(dtype)
    got = load_score_row(npy(row), "row.npy")
    assert got.dtype == np.float64 and got.shape == (11,)
    np.testing.assert_array_equal(got, row.astype(np.float64))


def test_score_row_keeps_masked_entries(rng: np.random.Generator) -> None:
    row = rng.standard_normal(6)
    row[[0, 4]] = -np.inf
    np.testing.assert_array_equal(load_score_row(npy(row), "row.npy"), row)
    all_masked = np.full(3, -np.inf, dtype=np.float32)
    np.testing.assert_array_equal(load_score_row(npy(all_masked), "row.npy"), all_masked)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (npy(np.array([1.0, 2.0, np.nan])), r"row\.npy has 1 NaN or \+inf .*index 2: nan"),
        (npy(np.array([np.inf, 2.0])), r"index 0: inf.*-inf for a masked key"),
        (npy(np.array([1.0, None]), allow_pickle=True), r"Python objects .*allow_pickle=False"),
        (npy(np.zeros((2, 3))), r"one score row of shape \(n,\), got shape \(2, 3\)"),
        (npy(np.zeros(0)), r"empty row"),
        (npy(np.array([1 + 2j])), r"dtype complex128 \(complex\)"),
        (npy(np.array([True])), r"dtype bool; expected real numbers"),
        (npy(np.array(["1.0"])), r"dtype <U3 \(string\)"),
        (npy(np.zeros(9))[:-5], r"truncated: .*shape \(9,\) of float64 \(72 bytes\)"),
        (b"not a numpy file", r"not a \.npy file"),
        (npz(s=np.zeros(3)), r"not a \.npy file"),
        (b"\x93NUMPY" + b"\x00" * (MAX_UPLOAD_BYTES), r"uploads are limited to 20,971,520"),
    ],
)
def test_score_row_rejects(data: bytes, pattern: str) -> None:
    with pytest.raises(UploadError, match=pattern):
        load_score_row(data, "row.npy")


# --- q, k, v: good files ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trips_exactly(rng: np.random.Generator, dtype: DTypeLike, compressed: bool):
    q, k, v = qkv(rng, 5, 13, 3, dtype)
    up = read_qkv(npz(compressed, q=q, k=k, v=v), "mine.npz")
    for got, want in zip(up.arrays, (q, k, v), strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want.astype(np.float64))
    assert up.source_dtypes == (str(np.dtype(dtype)),) * 3
    assert "q (5, 3), k (13, 3), v (13, 3)" in up.summary()
    assert ("kept as" if np.dtype(dtype) == np.float64 else "converted to") in up.summary()


def test_stacked_npy_and_three_files_and_leading_ones(rng: np.random.Generator) -> None:
    q, k, v = qkv(rng, 6, 6, 4, np.float16)
    want = [x.astype(np.float64) for x in (q, k, v)]
    for got in (
        load_qkv(npy(np.stack([q, k, v])), "qkv.npy"),
        load_qkv(npy(np.stack([q, k, v])[None]), "qkv.npy"),  # (1, 3, n, d)
        load_qkv(npz(q=q[None, None], k=k[None, None], v=v[None, None]), "b.npz"),
        load_qkv_files(npy(q), npy(k), npy(v.astype(np.float32))),
    ):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_content_decides_not_the_name(rng: np.random.Generator) -> None:
    q, k, v = qkv(rng)
    np.testing.assert_array_equal(load_qkv(npz(q=q, k=k, v=v), "misnamed.npy")[0], q)


def test_uploaded_bfloat16_traces_like_the_reference(rng: np.random.Generator) -> None:
    q, k, v = qkv(rng, 9, 14, 5, ml_dtypes.bfloat16)
    q, k, v = load_qkv(npz(q=q, k=k, v=v), "b.npz")
    trace = record_trace(q, k, v, block_q=4, block_kv=4, causal=True)
    assert trace.o is not None and trace.lse is not None, "the trace has no output"
    o_ref, lse_ref = attention_reference(q, k, v, causal=True)
    np.testing.assert_allclose(trace.o, o_ref, rtol=0, atol=1e-12)  # float64 throughout
    np.testing.assert_allclose(trace.lse, lse_ref, rtol=0, atol=1e-12)


# --- q, k, v: every bad file kind -------------------------------------------------------

RNG = np.random.default_rng(0)  # module-level parametrize data: fixed, so replayable
Q, K, V = qkv(RNG)  # q (5, 3), k and v (7, 3)
OBJ = np.array([[1.0, None, 2.0]] * 5, dtype=object)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        # pickled object arrays
        (npz(q=OBJ, k=K, v=V), r"array 'q' holds Python objects .*allow_pickle=False"),
        (npy(np.stack([OBJ] * 3), allow_pickle=True), r"up\.npz holds Python objects"),
        # wrong shapes
        (npz(q=Q[0], k=K, v=V), r"'q' must have shape \(n_q, d\) \(one head\), got shape \(3,\)"),
        (npz(q=Q, k=np.stack([K, K]), v=V), r"'k' must have shape \(n_k, d\).*pick one head"),
        (npz(q=Q[:0], k=K, v=V), r"'q' has shape \(0, 3\): it needs at least one row"),
        (npz(q=Q, k=K[:, :0], v=V[:, :0]), r"'k' has shape \(7, 0\): it needs"),
        (npy(Q), r"must stack q, k, v as one array of shape \(3, n, d\), got shape \(5, 3\)"),
        (npy(np.stack([Q, Q])), r"shape \(3, n, d\), got shape \(2, 5, 3\)"),
        # mismatched d and n
        (npz(q=Q, k=K[:, :2], v=V), r"'k' must have head dim d = 3 like q, i\.e\. shape \(7, 3\)"),
        (npz(q=Q, k=K, v=V[:, :2]), r"'v' must have the shape of k, \(n_k, d\) = \(7, 3\)"),
        (npz(q=Q, k=K, v=V[:6]), r"'v' must have the shape of k.*got shape \(6, 3\)"),
        # NaN / Inf, naming the array and the first bad index
        (npz(q=with_nan(Q, (2, 1)), k=K, v=V), r"'q' has 1 NaN or Inf .*index \(2, 1\) = nan"),
        (npz(q=Q, k=with_nan(K, (6, 2), np.inf), v=V), r"'k' has 1 NaN .*\(6, 2\) = inf"),
        (npz(q=Q, k=K, v=with_nan(V, (0, 0), -np.inf)), r"'v' has 1 NaN .*\(0, 0\) = -inf"),
        (npz(q=Q, k=np.full((7, 3), np.inf, np.float16), v=V), r"float16 overflows"),
        (npy(np.stack([Q, Q, with_nan(Q, (4, 2))])), r"up\.npz\[2\] \(v\) has 1 NaN"),
        # oversize: the file, an .npz once unpacked, one array's announced size
        (b"PK" + bytes(MAX_UPLOAD_BYTES), r"20,971,522 bytes \(20\.0 MiB\); uploads are limited"),
        (npz(True, q=np.zeros((3000, 1000)), k=K, v=V), r"unpacks to 22\.9 MiB, over the 20"),
        (npy_header_only((3, 99999, 99999)), r"shape \(3, 99999, 99999\) of float64: .* over the"),
        # the stepper's limits, with a suggestion
        (
            npz(q=np.ones((600, 2)), k=np.ones((700, 2)), v=np.ones((700, 2))),
            r"q\[:300\], k\[:350\]",
        ),
        (
            npz(q=np.ones((2, 300)), k=np.ones((2, 300)), v=np.ones((2, 300))),
            r"d = 300 is above 256",
        ),
        # missing, extra, misnamed keys
        (npz(q=Q, k=K), r"exactly the arrays q, k and v .*missing \['v'\], extra none"),
        (npz(q=Q, k=K, v=V, o=V), r"missing none, extra \['o'\]"),
        (npz(Q=Q, K=K, V=V), r"case-sensitive.*extra \['K', 'Q', 'V'\]"),
        # dtypes
        (npz(q=Q.astype(complex), k=K, v=V), r"'q' has dtype complex128 \(complex\)"),
        (npz(q=Q, k=K > 0, v=V), r"'k' has dtype bool"),
        (npz(q=Q, k=K, v=V.astype(str)), r"'v' has dtype <U\d+ \(string\)"),
        (npz(q=Q.astype("datetime64[s]"), k=K, v=V), r"datetime"),
        (npz(q=np.zeros(5, dtype="f4,f4"), k=K, v=V), r"structured array"),
        (npz(q=np.zeros((5, 3), dtype="V3"), k=K, v=V), r"dtype \|V3 \(void \(raw bytes\)\)"),
        # not a numpy file at all, a zip that is not an npz, truncated files
        (b"\x00\x01 random bytes", r"neither an \.npz \(zip\) nor a \.npy file"),
        (zip_of(**{"notes.txt": b"hello"}), r"found \['notes\.txt'\]"),
        (zip_of(**{"q.npy": b"x", "k.npy": npy(K), "v.npy": npy(V)}), r"'q' is not a \.npy"),
        (npz(q=Q, k=K, v=V)[:-40], r"not a valid \.npz file .*may be truncated"),
        (npy(np.stack([Q, Q, Q]))[:-7], r"truncated: .*shape \(3, 5, 3\)"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': 'f8',", r"header is unreadable"),
        # format versions np.save never writes, floats wider than float64, integers that
        # float64 cannot hold exactly
        (b"\x93NUMPY\x09\x09" + npy(Q)[8:], r"format version 9\.9; versions 1\.0, 2\.0 and"),
        (b"\x93NUMPY\x04\x00" + npy(Q)[8:], r"format version 4\.0"),
        # (a NumPy without float128, where long double is float64, cannot read the header)
        (
            zip_of(
                **{
                    "q.npy": npy_header_only((5, 3), "<f16") + bytes(224),
                    "k.npy": npy(K),
                    "v.npy": npy(V),
                }
            ),
            r"'q' (has dtype float128; expected real|is not a valid \.npy file: its header)",
        ),
        (npz(q=Q, k=np.full((7, 3), 2**53 + 1), v=V), r"'k' has 21 integer entries beyond 2\^53"),
        (npz(q=Q, k=K, v=np.full((7, 3), -(2**62))), r"'v' has 21 integer entries beyond 2\^53"),
        (npz(q=np.full((5, 3), 2**63, np.uint64), k=K, v=V), r"'q' has 15 integer entries"),
    ],
)
def test_qkv_rejects_with_its_message(data: bytes, pattern: str) -> None:
    expect(data, pattern)


def test_damaged_npz_member_is_reported() -> None:
    data = bytearray(npz(True, q=Q, k=K, v=V))
    start = data.index(b"k.npy") + 40  # inside k's compressed bytes
    data[start : start + 8] = b"\xff" * 8
    expect(bytes(data), r"'k' cannot be unpacked|'k' is not a valid|'k' is truncated")


def test_three_files_name_each_array() -> None:
    with pytest.raises(UploadError, match=r"k \(keys\.npy\) must have head dim d = 3"):
        load_qkv_files(npy(Q), npy(K[:, :2]), npy(V), ("q.npy", "keys.npy", "v.npy"))
    with pytest.raises(UploadError, match=r"v \(v\.npy\) holds Python objects"):
        load_qkv_files(npy(Q), npy(K), npy(OBJ, allow_pickle=True))
    with pytest.raises(UploadError, match=r"q \(q\.npy\) is .* uploads are limited"):
        load_qkv_files(bytes(MAX_UPLOAD_BYTES + 1), npy(K), npy(V))


def test_upload_error_is_a_value_error() -> None:
    assert issubclass(UploadError, ValueError)


# --- properties -------------------------------------------------------------------------

SLOW_TO_BUILD = settings(suppress_health_check=[HealthCheck.too_slow])  # whole .npz files


@SLOW_TO_BUILD
@given(
    n_q=st.integers(1, 40),
    n_k=st.integers(1, 40),
    d=st.integers(1, 16),
    dtype=st.sampled_from(DTYPES),
    form=st.sampled_from(["npz", "npz_compressed", "stacked"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_valid_uploads_round_trip(n_q, n_k, d, dtype, form, seed) -> None:
    rng = np.random.default_rng(seed)
    n_q = n_k if form == "stacked" else n_q
    q, k, v = qkv(rng, n_q, n_k, d, dtype)
    data = npy(np.stack([q, k, v])) if form == "stacked" else npz(form != "npz", q=q, k=k, v=v)
    for got, want in zip(load_qkv(data, "x"), (q, k, v), strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float64))


VALID = [npz(q=Q, k=K, v=V), npz(True, q=Q, k=K, v=V), npy(np.stack([Q, Q, Q]))]


@SLOW_TO_BUILD
@given(
    which=st.sampled_from(range(len(VALID))),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
@example(which=2, cut=1.0, flips=[(0.33, 40)])  # a "(" in the header: tokenize.TokenError
def test_random_corruptions_fail_with_upload_error_only(which, cut, flips) -> None:
    flipped = bytearray(VALID[which])
    for where, byte in flips:
        flipped[int(where * (len(flipped) - 1))] = byte
    data = bytes(flipped[: max(1, int(cut * len(flipped)))] if cut < 1 else flipped)
    try:
        q, k, v = load_qkv(data, "x.npz")
    except UploadError as exc:
        assert str(exc).startswith("x.npz"), exc  # the message names the file
    else:  # a flip inside the numbers can leave a valid file: then it must be checked
        assert q.dtype == k.dtype == v.dtype == np.float64
        assert q.shape[1] == k.shape[1] and k.shape == v.shape
        assert all(np.isfinite(x).all() for x in (q, k, v))


@SLOW_TO_BUILD
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"]))
def test_random_bytes_fail_with_upload_error_only(data: bytes, prefix: bytes) -> None:
    for load in (load_qkv, load_score_row):
        with pytest.raises(UploadError, match=r"^x "):  # the message names the file
            load(prefix + data, "x")


def test_digest_tells_uploads_apart(rng: np.random.Generator) -> None:
    q, k, v = qkv(rng, dtype=np.float64)
    digest = qkv_digest(q, k, v)
    assert len(digest) == 64 and digest == qkv_digest(np.asfortranarray(q), k, v)
    assert digest != qkv_digest(q, k, with_nan(v, (0, 0), v[0, 0] + 1e-12))
    assert digest != qkv_digest(q.reshape(3, 5), k, v)  # same bytes, other shape


# --- hostile archives and headers ------------------------------------------------------


def zip_raw(members: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A zip built by hand: (name, method, compressed bytes, declared size, crc) each.

    The declared size is whatever the caller says: a bomb declares a small one.
    """
    body, central = bytearray(), bytearray()
    for name, method, data, size, crc in members:
        offset, encoded = len(body), name.encode()
        fields = (20, 0, method, 0, 0, crc, len(data), size, len(encoded), 0)
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields) + encoded + data
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset
        )
        central += encoded
    count, at = len(members), len(body) + len(central)
    zip64 = b""
    if count > 0xFFFF:  # the count needs the zip64 end record
        zip64 = struct.pack(
            "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(central),
            len(body),
        ) + struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)  # fmt: skip
        count = 0xFFFF
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    return bytes(body + central + zip64 + end)


def stored(name: str, data: bytes) -> tuple[str, int, bytes, int, int]:
    return name, zipfile.ZIP_STORED, data, len(data), zlib.crc32(data)


BOMB_MIB = 100  # what each bomb holds, 5x the 20 MiB limit


class Compressor(Protocol):
    """zlib's, bz2's and lzma's incremental compressors."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def _compress_zeros(compressor: Compressor, mib: int) -> bytes:
    chunk = bytes(2**20)
    return b"".join(compressor.compress(chunk) for _ in range(mib)) + compressor.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """.npz files of ~0.3-40 KiB whose q declares 200 bytes but holds 100 MiB of zeros."""
    header = npy_header_only((5, 3))[:-16]  # a valid header announcing a small q
    # zip's own lzma framing; an undocumented class that typeshed's zipfile leaves out
    lzma = zipfile.LZMACompressor()  # type: ignore[attr-defined]
    streams = {
        "deflate": (zipfile.ZIP_DEFLATED, zlib.compressobj(1, zlib.DEFLATED, -15)),
        "bzip2": (zipfile.ZIP_BZIP2, bz2.BZ2Compressor(9)),
        "lzma": (zipfile.ZIP_LZMA, lzma),
    }
    out = {}
    for kind, (method, compressor) in streams.items():
        data = compressor.compress(header) + _compress_zeros(compressor, BOMB_MIB)
        out[kind] = zip_raw(
            [("q.npy", method, data, 200, 0), stored("k.npy", npy(K)), stored("v.npy", npy(V))]
        )
    return out


@pytest.mark.parametrize("kind", ["deflate", "bzip2", "lzma"])
def test_a_zip_bomb_is_refused_with_bounded_memory(bombs: dict[str, bytes], kind: str) -> None:
    data = bombs[kind]
    assert len(data) < 2**20  # small on disk
    tracemalloc.start()
    try:
        with pytest.raises(UploadError) as caught:
            load_qkv(data, "bomb.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * MAX_UPLOAD_BYTES, f"peak {peak / 2**20:.0f} MiB while refusing"
    message = str(caught.value)
    if kind == "deflate":
        assert "array 'q' unpacks to more than 20.0 MiB (it declares 200 bytes)" in message
    else:
        assert "array 'q' is compressed with zip method" in message
        assert "only stored and deflate members are accepted" in message


def test_an_honest_member_that_lies_about_its_size_is_refused() -> None:
    q = npy(Q)
    lying = ("q.npy", zipfile.ZIP_STORED, q, len(q) - 8, zlib.crc32(q))
    with pytest.raises(UploadError, match=r"'q' cannot be unpacked: its size or checksum"):
        load_qkv(zip_raw([lying, stored("k.npy", npy(K)), stored("v.npy", npy(V))]), "x.npz")


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        (["q.npy", "q.npy", "k.npy", "v.npy"], r"array 'q' \('q\.npy' and 'q\.npy'\)"),
        (["q", "q.npy", "k.npy", "v.npy"], r"two members for array 'q' \('q' and 'q\.npy'\)"),
        (["q.npy", "k.npy", "v.npy", "v"], r"two members for array 'v'"),
    ],
)
def test_ambiguous_member_names_are_refused(names: list[str], pattern: str) -> None:
    arrays = {"q": npy(Q), "k": npy(K), "v": npy(V)}
    data = zip_raw([stored(n, arrays[n.removesuffix(".npy")]) for n in names])
    with pytest.raises(UploadError, match=pattern):
        load_qkv(data, "x.npz")


def test_an_archive_of_180000_members_gives_a_short_message() -> None:
    data = zip_raw([stored(f"m{i}.npy", b"") for i in range(180_000)])
    assert len(data) <= MAX_UPLOAD_BYTES
    with pytest.raises(UploadError, match=r"extra \[.*\] and 179,992 more") as caught:
        load_qkv(data, "many.npz")
    assert len(str(caught.value)) <= 600


def test_a_long_file_name_is_cut_in_messages() -> None:
    with pytest.raises(UploadError) as caught:
        load_qkv(b"nothing", "x" * 100_000 + ".npz")
    assert len(str(caught.value)) < 400 and "xxx\u2026" in str(caught.value)


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((0, 2**70), r"shape \(0, 1180591620717411303424\): a dimension over 20,971,520"),
        ((1,) * 65, r"has 65 dimensions; at most 4 are accepted"),
        ((1, 1, 1, 5, 3), r"has 5 dimensions; at most 4"),
    ],
)
@pytest.mark.parametrize("form", ["npy", "npz"])
def test_hostile_npy_headers_are_refused(shape: tuple, pattern: str, form: str) -> None:
    header = npy_header_only(shape)
    data = header if form == "npy" else npz_members(q=header, k=npy(K), v=npy(V))
    with pytest.raises(UploadError, match=pattern):
        load_qkv(data, "h.npz")
    if form == "npy":
        with pytest.raises(UploadError, match=pattern):
            load_score_row(header, "row.npy")


def npz_members(**members: bytes) -> bytes:
    return zip_of(**{f"{name}.npy": data for name, data in members.items()})


def test_four_dims_are_still_one_head() -> None:
    q, _, _ = load_qkv(npz(q=Q[None, None], k=K[None, None], v=V[None, None]), "x.npz")
    np.testing.assert_array_equal(q, Q.astype(np.float64))


def test_shapes_are_checked_before_any_conversion() -> None:
    """20 MiB of int8 too large to trace: refused without a float64 copy (160 MiB)."""
    big = np.ones((3, 27_900, 250), np.int8)
    data = npy(big)
    assert len(data) <= MAX_UPLOAD_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(UploadError, match=r"27900 x 27900 = 778,410,000 scores"):
            load_qkv(data, "big.npy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_int8_is_kept_compact_and_float64_size_is_bounded() -> None:
    q, k = np.ones((81_900, 256), np.int8), np.ones((3, 256), np.int8)
    with pytest.raises(UploadError, match=r"160\.0 MiB once converted to float64 for the trace"):
        load_qkv(npz(q=q, k=k, v=k), "wide.npz")
    small = read_qkv(npz(q=q[:100], k=k, v=k), "small.npz")
    assert small.q.dtype == np.int8 and small.q.nbytes == 100 * 256  # kept as uploaded
    assert all(x.dtype == np.float64 for x in small.arrays)
    assert "int8, converted to float64" in small.summary()


@pytest.mark.parametrize(
    "wrap",
    [bytearray, memoryview, lambda b: np.frombuffer(b, np.uint8)],
    ids=["bytearray", "memoryview", "uint8 array"],
)
def test_bytes_like_uploads_are_accepted(wrap) -> None:
    for data, want in (
        (npz(q=Q, k=K, v=V), (Q, K, V)),
        (npy(np.stack([Q[:3], K[:3], V[:3]])), (Q[:3], K[:3], V[:3])),
    ):
        for got, x in zip(load_qkv(wrap(data), "x"), want, strict=True):
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, x.astype(np.float64))
    row = load_score_row(wrap(npy(np.array([1.0, -np.inf]))), "row.npy")
    assert row.tolist() == [1.0, -np.inf]
    with pytest.raises(UploadError, match=r"expected the file's bytes .* got str"):
        load_qkv("not bytes", "x")  # type: ignore[arg-type]


def test_a_score_row_is_checked_before_conversion() -> None:
    """20 MiB of int8 is refused as too long without a float64 copy (160 MiB)."""
    data = npy(np.ones(20_000_000, np.int8))
    tracemalloc.start()
    try:
        with pytest.raises(UploadError, match=r"holds 20000000 scores; the debugger takes at"):
            load_score_row(data, "row.npy", max_len=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert load_score_row(npy(np.arange(3, dtype=np.int8)), "r.npy", max_len=3).tolist() == [
        0.0, 1.0, 2.0,
    ]  # fmt: skip


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_every_version_np_save_writes_is_read(rng: np.random.Generator, version) -> None:
    q = rng.standard_normal((3, 4, 2))
    f = io.BytesIO()
    np.lib.format.write_array(f, q, version=version)
    got = load_qkv(f.getvalue(), "up.npy")
    np.testing.assert_array_equal(np.stack(got), q)


def test_integers_up_to_2_to_the_53_are_read_exactly() -> None:
    edge = np.array([[2**53, -(2**53), 3]], dtype=np.int64)
    got = load_score_row(npy(edge[0]), "row.npy")
    assert got.tolist() == [2.0**53, -(2.0**53), 3.0]
    with pytest.raises(UploadError, match=r"1 integer entries beyond 2\^53"):
        load_score_row(npy(np.array([1, 2**53 + 1])), "row.npy")
