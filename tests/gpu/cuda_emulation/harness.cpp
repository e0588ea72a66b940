// Runs a kernel of kernels/ on the CPU. Built by emu.py with
//   -DKERNEL_SOURCE='"<generated .cu>"'  the kernel with its #defines (launch_params.kernel_source)
//   -DEMU_HEADER='"cuda_emu.h"'          the emulator: cuda_emu.h, or cuda_emu_warp.h for warps
//   -DEMU_LAUNCH=launch                  cuda_emu::launch, or launch_warps
//   -DKERNEL_ENTRY=flash_attention_fwd   the kernel's entry point (Kernel.entry)
//   -DINPUT_T=float                      the element type of q, k, v (Kernel.input_dtype)
// as a shared library (loaded with ctypes) or, with tsan_main.cpp, as a program.
#include EMU_HEADER

#include KERNEL_SOURCE

extern "C" void run_kernel(const INPUT_T* q, const INPUT_T* k, const INPUT_T* v, float* o,
                           float* lse, int n_q, int n_k, int d, float scale, int causal,
                           int causal_offset, unsigned grid_x, unsigned grid_y, unsigned block_x) {
    cuda_emu::EMU_LAUNCH(dim3{grid_x, grid_y, 1}, dim3{block_x, 1, 1}, KERNEL_ENTRY, q, k, v, o,
                         lse, n_q, n_k, d, scale, causal, causal_offset);
}
