// The warp instructions of cuda_emu_warp.h one at a time, for tests/gpu/test_mma_layout.py:
// the emulator's fragment maps, one mma.m16n8k16 on registers the test builds itself,
// pack_rn and __shfl_xor_sync. Built by mma_probe.py as a shared library (loaded with ctypes).
#include <cstdint>

#include "cuda_emu_warp.h"

namespace {

template <int BF16>
void mma_kernel(const uint32_t* a, const uint32_t* b, float* d) {
    const int lane = int(threadIdx.x);
    const unsigned ra[4] = {a[4 * lane], a[4 * lane + 1], a[4 * lane + 2], a[4 * lane + 3]};
    const unsigned rb[2] = {b[2 * lane], b[2 * lane + 1]};
    float acc[4] = {d[4 * lane], d[4 * lane + 1], d[4 * lane + 2], d[4 * lane + 3]};
    cuda_emu::mma_16816<BF16>(acc, ra, rb);
    for (int i = 0; i < 4; ++i) d[4 * lane + i] = acc[i];
}

void shfl_kernel(const int* in, int* out, int lane_mask) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, in[threadIdx.x], lane_mask);
}

}  // namespace

extern "C" {

// out[(lane * 16 + slot) * 2 + {0, 1}] = (row, col): slots 0-7 a_i, 8-11 b_i, 12-15 c_i.
void fragment_map(int* out) {
    for (int lane = 0; lane < 32; ++lane)
        for (int slot = 0; slot < 16; ++slot) {
            const cuda_emu::RowCol rc = slot < 8    ? cuda_emu::a_element(lane, slot)
                                        : slot < 12 ? cuda_emu::b_element(lane, slot - 8)
                                                    : cuda_emu::c_element(lane, slot - 12);
            out[(lane * 16 + slot) * 2] = rc.row;
            out[(lane * 16 + slot) * 2 + 1] = rc.col;
        }
}

// One warp runs one mma: a (32 x 4 words), b (32 x 2 words), d (32 x 4 floats: C in, D out).
void run_mma(int bf16, const uint32_t* a, const uint32_t* b, float* d) {
    if (bf16)
        cuda_emu::launch_warps(dim3{1, 1, 1}, dim3{32, 1, 1}, mma_kernel<1>, a, b, d);
    else
        cuda_emu::launch_warps(dim3{1, 1, 1}, dim3{32, 1, 1}, mma_kernel<0>, a, b, d);
}

unsigned pack(int bf16, float lo, float hi) {
    return bf16 ? cuda_emu::pack_rn<1>(lo, hi) : cuda_emu::pack_rn<0>(lo, hi);
}

void run_shfl(const int* in, int* out, int lane_mask) {
    cuda_emu::launch_warps(dim3{1, 1, 1}, dim3{32, 1, 1}, shfl_kernel, in, out, lane_mask);
}

}  // extern "C"
