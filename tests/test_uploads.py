"""Uploads: every bad file kind is refused with its own message; good files round-trip."""

from __future__ import annotations

import io
import zipfile

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashviz import attention_reference, record_trace
from flashviz.uploads import (
    MAX_UPLOAD_BYTES,
    UploadError,
    load_qkv,
    load_qkv_files,
    load_score_row,
    qkv_digest,
    read_qkv,
)

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.int8, np.int64, ">f4"]


def npy(x: np.ndarray, **kw: object) -> bytes:
    f = io.BytesIO()
    np.save(f, x, **kw)
    return f.getvalue()


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    f = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return f.getvalue()


def zip_of(**members: bytes) -> bytes:
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
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
def test_score_row_round_trips_exactly(rng: np.random.Generator, dtype: object) -> None:
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
def test_npz_round_trips_exactly(rng: np.random.Generator, dtype: object, compressed: bool):
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

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
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


@FAST
@given(
    which=st.sampled_from(range(len(VALID))),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_random_corruptions_fail_with_upload_error_only(which, cut, flips) -> None:
    data = bytearray(VALID[which])
    for where, byte in flips:
        data[int(where * (len(data) - 1))] = byte
    data = bytes(data[: max(1, int(cut * len(data)))] if cut < 1 else data)
    try:
        q, k, v = load_qkv(data, "x.npz")
    except UploadError as exc:
        assert str(exc)
    else:  # a flip inside the numbers can leave a valid file: then it must be checked
        assert q.dtype == k.dtype == v.dtype == np.float64
        assert q.shape[1] == k.shape[1] and k.shape == v.shape
        assert all(np.isfinite(x).all() for x in (q, k, v))


@FAST
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"]))
def test_random_bytes_fail_with_upload_error_only(data: bytes, prefix: bytes) -> None:
    for load in (load_qkv, load_score_row):
        with pytest.raises(UploadError):
            load(prefix + data, "x")


def test_digest_tells_uploads_apart(rng: np.random.Generator) -> None:
    q, k, v = qkv(rng, dtype=np.float64)
    digest = qkv_digest(q, k, v)
    assert len(digest) == 16 and digest == qkv_digest(np.asfortranarray(q), k, v)
    assert digest != qkv_digest(q, k, with_nan(v, (0, 0), v[0, 0] + 1e-12))
    assert digest != qkv_digest(q.reshape(3, 5), k, v)  # same bytes, other shape
