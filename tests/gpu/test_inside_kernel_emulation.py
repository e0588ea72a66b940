"""The "Inside the kernel" ownership maps are the kernels' own index arithmetic.

Each kernel is compiled for the CPU emulator (tests/gpu/cuda_emulation/emu.py)
with two text substitutions, then run on one query block and two heads:

* head 0: at the line that masks the scores (phase scores), where each thread holds its
  s_ij entries under the kernel's own ``row`` and ``col``, the thread writes an id into o at
  (row, col) instead of nothing: S_ij's owner;
* head 1: at the store of o (phase normalize), the thread writes the id instead of o_i / l_i:
  O_i's owner.

The id packs the thread (the float32 kernel: threadIdx.x; the tensor-core kernel: its own
``lane`` and warp ``wrow / 16``) and the register's two indices (s_ij[a][b], o_i[a][b];
s[n][e], o_acc[n][2h + e]); all are below 2^24, exact in float32. The decoded maps must equal
``flashviz.lab.inside_kernel.ownership`` entry by entry. n_q = BLOCK_Q and n_k = BLOCK_KV
(one block, one tile), d = HEAD_DIM >= BLOCK_KV so every column of S lands in o.
"""

from __future__ import annotations

import numpy as np
import pytest

from flashviz.core.kernel_files import KERNEL_PATH, TC_KERNEL_PATH
from flashviz.gpu.launch_params import SCALAR, TENSOR_CORES, kernel_text
from flashviz.lab.inside_kernel import Ownership, ownership
from tests.gpu.cuda_emulation import emu
from tests.gpu.test_tc_kernel import needs_cxx

pytestmark = needs_cxx

THREAD_BASE, INDEX_BASE = 1024, 64  # id = thread + 1024 * (64 * first index + second index)

SCALAR_CONFIG = SCALAR.config(64, 64, 32)  # 256 threads, 4 rows x 2 (S) / 4 (O) columns each
SCALAR_EDITS = (
    (
        "                s_ij[a][b] = seen ? s_ij[a][b] * scale : NEG_INF;\n",
        "                s_ij[a][b] = seen ? s_ij[a][b] * scale : NEG_INF;\n"
        "                if (blockIdx.y == 0 && col < d)\n"
        "                    o[(long long)row * d + col] =\n"
        "                        (float)(threadIdx.x + 1024 * (64 * a + b));\n",
    ),
    (
        "if (col < d) o[(long long)row * d + col] = o_i[a][b] / l_safe;",
        "if (col < d && blockIdx.y == 1)\n"
        "                o[(long long)row * d + col] = (float)(threadIdx.x + 1024 * (64 * a + b));",
    ),
)
TC_CONFIG = TENSOR_CORES.config(64, 64, 64, "float16")  # 4 warps
TC_ID = "(float)(threadIdx.x + 1024 * (64 * n + {slot}))"  # the thread, not the kernel's lane math
TC_EDITS = (
    (
        "                s[n][e] = seen ? s[n][e] * scale : NEG_INF;\n",
        "                s[n][e] = seen ? s[n][e] * scale : NEG_INF;\n"
        "                if (blockIdx.y == 0 && col < d)\n"
        f"                    o[(long long)row * d + col] = {TC_ID.format(slot='e')};\n",
    ),
    (
        "if (col < d) o[(long long)row * d + col] = o_acc[n][2 * h + e] / l_safe;",
        "if (col < d && blockIdx.y == 1)\n"
        f"                    o[(long long)row * d + col] = {TC_ID.format(slot='2 * h + e')};",
    ),
)


def _edited(text: str, edits: tuple[tuple[str, str], ...]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, f"the kernel no longer has exactly one {old.strip()!r}"
        text = text.replace(old, new)
    return text


def _problem(config, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    shape = {"q": (2, config.block_q, config.head_dim), "kv": (2, config.block_kv, config.head_dim)}
    return rng.standard_normal(shape["q"]), *(rng.standard_normal(shape["kv"]) for _ in "kv")


def _decode(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert np.all(np.isfinite(ids)), "an entry no thread claimed"
    ids = ids.astype(np.int64)
    index = ids // THREAD_BASE
    return ids % THREAD_BASE, index // INDEX_BASE, index % INDEX_BASE


def _registers(first: np.ndarray, second: np.ndarray, name: str) -> np.ndarray:
    return np.char.add(
        np.char.add(np.char.add(f"{name}[", first.astype(str)), "]["),
        np.char.add(second.astype(str), "]"),
    )


def _check(own: Ownership, ids: np.ndarray, name: str) -> None:
    thread, first, second = _decode(ids)
    np.testing.assert_array_equal(thread, own.thread, err_msg=f"{own.matrix}: thread")
    np.testing.assert_array_equal(thread // 32, own.warp, err_msg=f"{own.matrix}: warp")
    np.testing.assert_array_equal(thread % 32, own.lane, err_msg=f"{own.matrix}: lane")
    registers = _registers(first, second, name)
    np.testing.assert_array_equal(registers, own.register, err_msg=f"{own.matrix}: register")


@pytest.fixture(scope="module")
def scalar_ids() -> np.ndarray:
    lib = emu.build(
        emu.Build(SCALAR_CONFIG, source=_edited(kernel_text(KERNEL_PATH), SCALAR_EDITS))
    )
    call, arrays = SCALAR.prepare(
        *_problem(SCALAR_CONFIG), block_q=SCALAR_CONFIG.block_q, block_kv=SCALAR_CONFIG.block_kv
    )
    o, _ = emu.run(lib, call, arrays)
    return o


@pytest.fixture(scope="module")
def tc_ids() -> np.ndarray:
    lib = emu.build(emu.Build(TC_CONFIG, source=_edited(kernel_text(TC_KERNEL_PATH), TC_EDITS)))
    call, bits = TENSOR_CORES.prepare(
        *_problem(TC_CONFIG),
        precision=TC_CONFIG.precision,
        block_q=TC_CONFIG.block_q,
        block_kv=TC_CONFIG.block_kv,
    )
    o, _ = emu.run(lib, call, bits)
    return o


def test_the_float32_kernel_owns_s_as_drawn(scalar_ids: np.ndarray) -> None:
    own = ownership("float32", SCALAR_CONFIG.defines, "S_ij")
    _check(own, scalar_ids[0, :, : SCALAR_CONFIG.block_kv], "s_ij")


def test_the_float32_kernel_owns_o_as_drawn(scalar_ids: np.ndarray) -> None:
    _check(ownership("float32", SCALAR_CONFIG.defines, "O_i"), scalar_ids[1], "o_i")


def test_the_tensor_core_kernel_owns_s_as_drawn(tc_ids: np.ndarray) -> None:
    _check(
        ownership("tensor cores", TC_CONFIG.defines, "S_ij"),
        tc_ids[0, :, : TC_CONFIG.block_kv],
        "s",
    )


def test_the_tensor_core_kernel_owns_o_as_drawn(tc_ids: np.ndarray) -> None:
    _check(ownership("tensor cores", TC_CONFIG.defines, "O_i"), tc_ids[1], "o_acc")


def test_a_wrong_map_fails(tc_ids: np.ndarray) -> None:
    """The check can fail: the float32 kernel's map is not the tensor-core kernel's."""
    wrong = ownership("float32", SCALAR_CONFIG.defines, "O_i")
    wrong = Ownership("tensor cores", "O_i", wrong.thread[:, :64] % 128, wrong.warp[:, :64] % 4,
                      wrong.lane[:, :64], wrong.register[:, :64])  # fmt: skip
    with pytest.raises(AssertionError):
        _check(wrong, tc_ids[1], "o_acc")
