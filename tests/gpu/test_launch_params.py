"""flashviz.gpu.launch_params: the build sizes, launch geometry and arguments of the CUDA
kernels (the float32 one and the tensor-core one)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from flashviz.core.block_mask import create_block_mask
from flashviz.core.kernel_files import KERNEL_NAME, KERNEL_PATH, TC_KERNEL_NAME, TC_KERNEL_PATH
from flashviz.core.precision import get_precision
from flashviz.gpu.launch_params import (
    ARRAY_ARGUMENTS,
    KERNEL_HEAD_DIMS,
    MASK_DEFINES,
    SCALAR,
    SCALAR_ARGUMENTS,
    SHARED_LIMIT_BYTES,
    TC_PAD_WORDS,
    TC_PRECISIONS,
    TENSOR_CORES,
    KernelConfig,
    UnsupportedMaskError,
    kernel_source,
    kernel_text,
    launch_params,
    padded_head_dim,
)


@pytest.mark.parametrize(
    ("d", "head_dim"), [(1, 16), (16, 16), (17, 32), (40, 64), (64, 64), (65, 96), (128, 128)]
)
def test_head_dim_is_padded_up_to_a_compiled_one(d, head_dim):
    assert padded_head_dim(d) == head_dim


@pytest.mark.parametrize("d", [0, 129, -3, 2.5, True])
def test_head_dim_out_of_range_is_refused(d):
    with pytest.raises(ValueError, match=r"\bd\b"):
        padded_head_dim(d)


def test_offered_blocks_fit_and_shrink_with_the_head_dim():
    assert SCALAR.fitting_blocks(16) == SCALAR.blocks
    assert SCALAR.fitting_blocks(128) == ((32, 32),)
    for d in range(1, 129):
        for bq, bkv in SCALAR.fitting_blocks(d):
            assert SCALAR.config(d, bq, bkv).shared_bytes <= SHARED_LIMIT_BYTES


def test_config_defines_and_threads():
    config = SCALAR.config(40, 64, 32)
    assert config.defines == {
        "BLOCK_Q": 64,
        "BLOCK_KV": 32,
        "HEAD_DIM": 64,
        "NUM_THREADS": 256,
        "THREADS_PER_ROW": 16,
        **MASK_DEFINES,
        "RESCALE_MARGIN": "0.0f",  # FA4's lazy rescaling off: FA2's rule
    }
    # a threshold of 8 (log2 units) in the scores' natural-log units, as NumPy's float32 adds it
    margin = SCALAR.config(40, 64, 32, rescale_threshold=8).defines["RESCALE_MARGIN"]
    assert margin == "5.545177459716797f" and float(margin[:-1]) == np.float32(8 * np.log(2))
    # the element mask's kinds, by the codes of flashviz.core.masks
    assert MASK_DEFINES == {"MASK_ALL": 0, "MASK_WINDOW": 1, "MASK_PREFIX_LM": 2,
                            "MASK_DOCUMENT": 3, "MASK_CHUNKED": 4, "MASK_GLOBAL": 5}  # fmt: skip
    # q_i (64 x 65) + kv_j (32 x 65) + p_ij (64 x 33) + row_part (64 x 16) floats
    assert config.shared_bytes == 4 * (64 * 65 + 32 * 65 + 64 * 33 + 64 * 16)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((64, 0, 32), "block_q"),
        ((64, 30, 32), "block_q"),
        ((64, 512, 32), "block_q"),
        ((64, 32, 24), "block_kv"),
        ((64, 32, None), "block_kv"),
        ((128, 64, 64), "block_q = 64, block_kv = 64"),
        ((200, 32, 32), r"\bd\b"),
    ],
)
def test_bad_configs_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        SCALAR.config(*args)


def test_source_has_the_defines_then_the_file_with_its_line_numbers():
    config = SCALAR.config(64, 32, 32)
    lines = kernel_source(config).splitlines()
    n = len(config.defines)
    assert lines[:n] == [f"#define {k} {v}" for k, v in config.defines.items()]
    assert lines[n] == '#line 1 "kernels/flash_attention.cu"'
    assert lines[n + 1 :] == kernel_text(KERNEL_PATH).splitlines()
    assert kernel_source(config, "X").splitlines()[n + 1 :] == ["X"]


@pytest.mark.parametrize(
    ("n_q", "bq", "grid_x"), [(1, 32, 1), (32, 32, 1), (33, 32, 2), (113, 64, 2), (128, 64, 2)]
)
def test_launch_params(n_q, bq, grid_x):
    config = SCALAR.config(32, bq, 32)
    grid, block = launch_params(config, n_q, 7, 6)
    assert grid == (grid_x, 6, 1)
    assert block == (config.num_threads, 1, 1)


@pytest.mark.parametrize(
    ("args", "name"), [((0, 5, 1), "n_q"), ((5, 0, 1), "n_k"), ((5, 5, 0), "batch_heads")]
)
def test_launch_params_refuse_empty_problems(args, name):
    with pytest.raises(ValueError, match=name):
        launch_params(SCALAR.config(32, 32, 32), *args)


def test_launch_params_refuse_too_many_heads():
    with pytest.raises(ValueError, match="batch_heads"):
        launch_params(SCALAR.config(32, 32, 32), 4, 4, 70000)


@pytest.mark.parametrize(("path", "entry"), [(KERNEL_PATH, KERNEL_NAME),
                                             (TC_KERNEL_PATH, TC_KERNEL_NAME)])  # fmt: skip
def test_the_kernels_take_the_arguments_in_launch_params_order(path, entry):
    params = re.search(rf"{entry}\(([^)]*)\)", path.read_text()).group(1)
    names = [re.findall(r"\w+", p)[-1] for p in params.split(",")]
    assert names == ["q", "k", "v", "o", "lse", *ARRAY_ARGUMENTS, *SCALAR_ARGUMENTS]


def _kernel_scalar_types() -> list[type]:
    """C types of the kernel's scalar parameters, read from the .cu signature."""
    text = KERNEL_PATH.read_text()
    params = re.search(rf"{KERNEL_NAME}\(([^)]*)\)", text).group(1)
    types = [p.split()[0] for p in params.split(",") if "*" not in p]
    return [{"int": np.int32, "float": np.float32}[t] for t in types]


@pytest.mark.parametrize(
    ("causal", "align", "offset"), [(False, "bottom_right", 0), (True, "bottom_right", 8)]
)
def test_prepare_call(make_qkv, causal, align, offset):
    q, k, v = make_qkv(5, 13, 40, lead=(2, 3))
    call, arrays = SCALAR.prepare(q, k, v, causal=causal, causal_align=align, scale=0.5)
    assert call.config == SCALAR.config(40, *SCALAR.fitting_blocks(40)[0])
    assert (call.grid, call.block) == launch_params(call.config, 5, 13, 6)
    assert (call.lead, call.batch_heads, call.n_q, call.n_k, call.d) == ((2, 3), 6, 5, 13, 40)
    assert (call.causal, call.causal_offset) == (causal, offset)
    # NumPy scalars of exactly the kernel's C types (CuPy sends a Python int as long long)
    assert [type(s) for s in call.scalars] == _kernel_scalar_types()
    # scale, n_q, n_k, d, group, heads, mask (B, H), causal, offset, kind, a, b, c
    assert [float(s) for s in call.scalars] == [0.5, 5, 13, 40, 1, 3, 1, 1, causal, offset,
                                                0, 0, 0, 0]  # fmt: skip
    for x, a in zip((q, k, v), arrays, strict=True):
        assert a.dtype == np.float32 and a.flags.c_contiguous
        np.testing.assert_array_equal(a, x.astype(np.float32).reshape(6, -1, 40))


def test_prepare_call_defaults_and_validation(make_qkv):
    q, k, v = make_qkv(4, 4, 128)
    call, _ = SCALAR.prepare(q, k, v)
    assert (call.config.block_q, call.config.block_kv, call.scale) == (32, 32, 1 / np.sqrt(128))
    with pytest.raises(ValueError, match="causal"):
        SCALAR.prepare(q, k, v, causal="yes")
    with pytest.raises(ValueError, match="causal_align"):
        SCALAR.prepare(q, k, v, causal=True, causal_align="middle")
    with pytest.raises(ValueError, match="block_q = 64, block_kv = 64"):
        SCALAR.prepare(q, k, v, block_q=64, block_kv=64)
    with pytest.raises(ValueError, match=r"\bd\b"):
        SCALAR.prepare(*make_qkv(4, 4, 129))


def test_head_dims_and_blocks_are_sorted():
    assert list(KERNEL_HEAD_DIMS) == sorted(KERNEL_HEAD_DIMS)
    assert len(set(SCALAR.blocks)) == len(SCALAR.blocks)


# --- the tensor-core kernel (kernels/flash_attention_tc.cu) ---


def test_tc_config_defines_threads_and_shared_memory():
    config = TENSOR_CORES.config(40, 64, 32, "bfloat16")
    assert config == KernelConfig(TENSOR_CORES, 64, 64, 32, "bfloat16")
    assert config.defines == {
        "BLOCK_Q": 64,
        "BLOCK_KV": 32,
        "HEAD_DIM": 64,
        "NUM_THREADS": 128,  # 4 warps of 16 query rows
        "INPUT_BF16": 1,
        **MASK_DEFINES,
        "RESCALE_MARGIN": "0.0f",
    }
    assert TENSOR_CORES.config(64, 128, 64, "float16").defines["NUM_THREADS"] == 256
    assert TENSOR_CORES.config(64, 128, 64, "float16").defines["INPUT_BF16"] == 0
    # q_s (64 rows) + k_s (32 rows) of 64 / 2 + 4 words, vt_s: 64 rows of 32 / 2 + 4 words
    assert config.shared_bytes == 4 * ((64 + 32) * 36 + 64 * 20) == 18944


def test_tc_shared_memory_matches_the_kernel_declarations():
    """The three __shared__ arrays of the .cu, with the .cu's own row lengths."""
    text = TC_KERNEL_PATH.read_text()
    assert "__shared__ unsigned q_s[BLOCK_Q][ROW_WORDS_D];" in text
    assert "__shared__ unsigned k_s[BLOCK_KV][ROW_WORDS_D];" in text
    assert "__shared__ unsigned vt_s[HEAD_DIM][ROW_WORDS_KV];" in text
    assert f"#define ROW_WORDS_D (HEAD_DIM / 2 + {TC_PAD_WORDS})" in text
    assert f"#define ROW_WORDS_KV (BLOCK_KV / 2 + {TC_PAD_WORDS})" in text
    assert (
        f'extern "C" __global__ void __launch_bounds__(NUM_THREADS, 1)\n{TC_KERNEL_NAME}(' in text
    )


def test_tc_blocks_fit_and_shrink_with_the_head_dim():
    assert TENSOR_CORES.fitting_blocks(16) == TENSOR_CORES.blocks
    assert TENSOR_CORES.fitting_blocks(64) == TENSOR_CORES.blocks
    assert TENSOR_CORES.fitting_blocks(96) == ((64, 64), (64, 32))
    assert TENSOR_CORES.fitting_blocks(128) == ((64, 32),)
    for d in range(1, 129):
        assert TENSOR_CORES.fitting_blocks(d), f"no block pair fits head dim {d}"
        for bq, bkv in TENSOR_CORES.fitting_blocks(d):
            assert TENSOR_CORES.config(d, bq, bkv, "float16").shared_bytes <= SHARED_LIMIT_BYTES


def test_offered_tc_configs_are_every_head_dim_pair_and_precision():
    configs = TENSOR_CORES.offered_configs()
    assert (
        len(configs)
        == len(set(configs))
        == 2 * sum(len(TENSOR_CORES.fitting_blocks(d)) for d in KERNEL_HEAD_DIMS)
    )
    assert {c.precision for c in configs} == set(TC_PRECISIONS) == {"float16", "bfloat16"}
    assert {c.head_dim for c in configs} == set(KERNEL_HEAD_DIMS)


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((64, 24, 32, "float16"), "block_q must be a multiple of 16"),
        ((64, 528, 32, "float16"), "block_q"),
        ((64, 0, 32, "float16"), "block_q"),
        ((64, 32, 8, "float16"), "block_kv must be a multiple of 16"),
        ((64, 32, 32, "float32"), "precision"),
        ((128, 64, 64, "float16"), "block_q = 64, block_kv = 64"),
        ((129, 32, 32, "float16"), r"\bd\b"),
    ],
)
def test_bad_tc_configs_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        TENSOR_CORES.config(*args)


def test_tc_source_has_the_defines_then_the_file_with_its_line_numbers():
    config = TENSOR_CORES.config(64, 64, 32, "float16")
    lines = kernel_source(config).splitlines()
    n = len(config.defines)
    assert lines[:n] == [f"#define {k} {v}" for k, v in config.defines.items()]
    assert lines[n] == '#line 1 "kernels/flash_attention_tc.cu"'
    assert lines[n + 1 :] == kernel_text(TC_KERNEL_PATH).splitlines()
    assert kernel_source(config, "X").splitlines()[n + 1 :] == ["X"]


def test_tc_launch_params_one_warp_per_16_rows():
    grid, block = launch_params(TENSOR_CORES.config(64, 64, 32, "float16"), 113, 7, 6)
    assert (grid, block) == ((2, 6, 1), (128, 1, 1))
    grid, block = launch_params(TENSOR_CORES.config(64, 128, 64, "bfloat16"), 128, 7, 1)
    assert (grid, block) == ((1, 1, 1), (256, 1, 1))


def _tc_scalar_types() -> list[type]:
    text = TC_KERNEL_PATH.read_text()
    params = re.search(rf"{TC_KERNEL_NAME}\(([^)]*)\)", text).group(1)
    types = [p.split()[0] for p in params.split(",") if "*" not in p]
    return [{"int": np.int32, "float": np.float32}[t] for t in types]


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_prepare_tc_call_rounds_to_the_storage_type_as_raw_bits(make_qkv, precision):
    q, k, v = make_qkv(5, 13, 40, lead=(2, 3))
    call, arrays = TENSOR_CORES.prepare(
        q, k, v, precision=precision, causal=True, causal_align="top_left", scale=0.5
    )
    assert call.config == TENSOR_CORES.config(40, *TENSOR_CORES.fitting_blocks(40)[0], precision)
    assert (call.grid, call.block) == launch_params(call.config, 5, 13, 6)
    assert (call.lead, call.batch_heads, call.n_q, call.n_k, call.d) == ((2, 3), 6, 5, 13, 40)
    assert (call.causal, call.causal_offset) == (True, 0)
    assert [type(s) for s in call.scalars] == _tc_scalar_types()
    storage = get_precision(precision).storage
    for x, bits in zip((q, k, v), arrays, strict=True):
        assert bits.dtype == np.uint16 and bits.flags.c_contiguous
        assert bits.shape == (6, x.shape[-2], 40)
        # the bits are the storage type's: round to nearest even, as precision.store does
        np.testing.assert_array_equal(
            bits.view(storage).astype(np.float32), x.astype(storage).reshape(6, -1, 40)
        )


def test_prepare_tc_call_defaults_and_validation(make_qkv):
    q, k, v = make_qkv(4, 4, 128)
    call, _ = TENSOR_CORES.prepare(q, k, v, precision="float16")
    assert (call.config.block_q, call.config.block_kv, call.scale) == (64, 32, 1 / np.sqrt(128))
    with pytest.raises(ValueError, match="precision"):
        TENSOR_CORES.prepare(q, k, v, precision="float64")
    with pytest.raises(ValueError, match="block_q = 64, block_kv = 64"):
        TENSOR_CORES.prepare(q, k, v, precision="float16", block_q=64, block_kv=64)
    with pytest.raises(ValueError, match="causal_align"):
        TENSOR_CORES.prepare(q, k, v, precision="float16", causal=True, causal_align="middle")


def test_prepare_a_built_in_mask_with_grouped_query_heads(make_qkv):
    """GQA: k and v keep their 2 heads (query heads 0-1 read K/V head 0, 2-3 head 1); the
    mask's lists are the block mask's, its scalars the mask's kind and parameters."""
    from flashviz.masks import and_masks, causal, document, sliding_window

    q, _, _ = make_qkv(70, 90, 32, lead=(2, 4))
    _, k, v = make_qkv(70, 90, 32, lead=(2, 2))
    mod = sliding_window(20)
    call, arrays = SCALAR.prepare(q, k, v, mask_mod=mod, block_q=32, block_kv=32)
    assert [a.shape for a in arrays] == [(8, 70, 32), (4, 90, 32), (4, 90, 32)]
    assert (call.group, call.heads, call.batch_heads, call.causal) == (2, 4, 8, False)
    bm = create_block_mask(mod, None, None, 70, 90, (32, 32))
    fields = (bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks, bm.full_kv_indices)
    for got, want in zip(call.arrays[:4], fields, strict=True):
        assert got.dtype == np.int32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    names = dict(zip(SCALAR_ARGUMENTS, call.scalars, strict=True))
    assert (names["mask_kind"], names["mask_a"], names["causal"], names["causal_offset"]) == (
        MASK_DEFINES["MASK_WINDOW"], 20, 1, 0)  # fmt: skip
    # a document mask: each position's document, the last Q block's padding rows too (96)
    call, _ = SCALAR.prepare(q, k, v, mask_mod=and_masks(causal(), document([0, 30, 31])),
                             block_q=32, block_kv=32)  # fmt: skip
    doc_ids = call.arrays[-1]
    assert doc_ids.shape == (96,) and doc_ids[[0, 29, 30, 31, 95]].tolist() == [1, 1, 2, 3, 3]


def test_prepare_takes_the_block_masks_blocks_and_heads(make_qkv):
    from flashviz.masks import chunked

    q, k, v = make_qkv(70, 90, 32, lead=(2, 3))
    bm = create_block_mask(lambda b, h, qi, ki: (ki <= qi + h) & (b + ki >= 0), 2, 3, 70, 90,
                           (64, 32))  # fmt: skip
    with pytest.raises(UnsupportedMaskError, match=r"built-in masks of flashviz\.masks"):
        SCALAR.prepare(q, k, v, block_mask=bm)
    bm = create_block_mask(chunked(16), None, 3, 70, 90, (64, 32))
    call, _ = SCALAR.prepare(q, k, v, block_mask=bm)
    assert (call.config.block_q, call.config.block_kv) == (64, 32)
    names = dict(zip(SCALAR_ARGUMENTS, call.scalars, strict=True))
    assert (names["mask_batches"], names["mask_heads"]) == (1, 3)
    with pytest.raises(ValueError, match="block_mask has tiles of"):
        SCALAR.prepare(q, k, v, block_mask=bm, block_q=32, block_kv=32)
    with pytest.raises(ValueError, match="block_kv must be a multiple of 16"):  # its tiles
        TENSOR_CORES.prepare(
            q,
            k,
            v,
            precision="float16",
            block_mask=create_block_mask(chunked(16), None, None, 70, 90, (16, 8)),
        )
