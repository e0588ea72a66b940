// Runs a kernel of kernels/ on the CPU. Built by emu.py with
//   -DKERNEL_SOURCE='"<generated .cu>"'  the kernel with its #defines (launch_params.kernel_source)
//   -DEMU_HEADER='"cuda_emu.h"'          the emulator: cuda_emu.h, or cuda_emu_warp.h for warps
//   -DEMU_LAUNCH=launch                  cuda_emu::launch, or launch_warps
//   -DKERNEL_ENTRY=flash_attention_fwd   the kernel's entry point (Kernel.entry)
//   -DINPUT_T=float                      the element type of q, k, v (Kernel.input_dtype)
// as a shared library (loaded with ctypes) or, with tsan_main.cpp, as a program.
// The kernels' arguments (launch_params.KernelCall): q, k, v, o, lse, the mask's NUM_LISTS
// int arrays (KernelCall.arrays), scale, then NUM_INTS ints (KernelCall.scalars[1:]);
// emu.py passes -DNUM_LISTS and -DNUM_INTS from a KernelCall.
#include EMU_HEADER

#include KERNEL_SOURCE

static_assert(NUM_LISTS == 5 && NUM_INTS == 13, "run_kernel passes 5 arrays and 13 ints");

extern "C" void run_kernel(const INPUT_T* q, const INPUT_T* k, const INPUT_T* v, float* o,
                           float* lse, const int* const* lists, float scale, const int* ints,
                           unsigned grid_x, unsigned grid_y, unsigned block_x) {
    cuda_emu::EMU_LAUNCH(dim3{grid_x, grid_y, 1}, dim3{block_x, 1, 1}, KERNEL_ENTRY, q, k, v, o,
                         lse, lists[0], lists[1], lists[2], lists[3], lists[4], scale, ints[0],
                         ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], ints[7], ints[8],
                         ints[9], ints[10], ints[11], ints[12]);
}
