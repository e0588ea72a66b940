// Runs kernels/flash_attention_tc.cu on the CPU. Built by emu_tc.py like harness.cpp, with
// -DKERNEL_SOURCE='"<generated .cu>"' (the kernel with its #defines, INPUT_BF16 included),
// as a shared library or, with tsan_tc_main.cpp, as a ThreadSanitizer program.
// q, k, v are the raw bits of float16 / bfloat16 arrays.
#include "cuda_emu_warp.h"

#include KERNEL_SOURCE

extern "C" void run_flash_attention_tc(const unsigned short* q, const unsigned short* k,
                                       const unsigned short* v, float* o, float* lse, int n_q,
                                       int n_k, int d, float scale, int causal,
                                       int causal_offset, unsigned grid_x, unsigned grid_y,
                                       unsigned block_x) {
    cuda_emu::launch_warps(dim3{grid_x, grid_y, 1}, dim3{block_x, 1, 1}, flash_attention_tc_fwd,
                           q, k, v, o, lse, n_q, n_k, d, scale, causal, causal_offset);
}
