// Runs kernels/flash_attention.cu on the CPU. Built by emu.py with
//   -DKERNEL_SOURCE='"<generated .cu>"'   (the kernel with its #defines, launch.kernel_source)
// as a shared library (loaded with ctypes) or, with tsan_main.cpp, as a program.
#include "cuda_emu.h"

#include KERNEL_SOURCE

extern "C" void run_flash_attention(const float* q, const float* k, const float* v, float* o,
                                    float* lse, int n_q, int n_k, int d, float scale,
                                    int causal, int causal_offset, unsigned grid_x,
                                    unsigned grid_y, unsigned block_x) {
    cuda_emu::launch(dim3{grid_x, grid_y, 1}, dim3{block_x, 1, 1}, flash_attention_fwd, q, k,
                     v, o, lse, n_q, n_k, d, scale, causal, causal_offset);
}
