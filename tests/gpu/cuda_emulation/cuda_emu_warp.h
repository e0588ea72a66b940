// The warp-level CUDA the tensor-core kernel kernels/flash_attention_tc.cu needs, on top of
// cuda_emu.h (tests: tests/gpu/test_mma_layout.py, tests/gpu/test_tc_kernel.py).
//
//   __shfl_xor_sync(mask, x, lane_mask)   full-warp only (mask must be 0xffffffff)
//   mma_16816(d, a, b)                    mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}
//   pack_rn(lo, hi)                       cvt.rn.{f16x2,bf16x2}.f32 (two float32 -> one word)
//   cuda_emu::launch_warps(...)           cuda_emu::launch plus one Warp per 32 threads
//
// A warp instruction is a rendezvous of the warp's 32 threads: each lane writes its
// operands into its slot of the warp's exchange buffer, waits on the warp's barrier, reads
// what it needs, and waits again before the buffer is reused. The barrier orders the
// writes before the reads, so ThreadSanitizer sees no race in the exchange itself.
//
// Checks a GPU would not make (its behaviour is undefined there): every lane must reach the
// same warp instruction (same op, same lane mask), no lane may have left the kernel, the
// mask must be the full warp. A violation prints what happened and aborts, so a divergent
// shuffle fails a test instead of computing something plausible.
//
// Layouts: the lane <-> element maps of mma.m16n8k16 are written below exactly as the PTX
// ISA states them ("Matrix fragments for mma.m16n8k16 with floating point type"); the
// instruction gathers the whole 16 x 16 A and 16 x 8 B from the 32 lanes through them and
// hands each lane its 4 elements of D. A kernel using another layout gets wrong numbers.
//
// INPUT_BF16 is one of the kernel's prepended #defines, which come after this header: so
// mma_16816 and pack_rn are macros, expanded where the kernel uses them.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cuda_emu.h"

#define __forceinline__ inline

namespace cuda_emu {

constexpr int WARP = 32;
constexpr int SLOT_WORDS = 8;  // a lane's operands of one warp instruction (mma: 4 + 2)

enum class WarpOp : uint32_t { shfl_xor = 1, mma_f16 = 2, mma_bf16 = 3 };

struct Warp {
    Barrier barrier{WARP};
    std::atomic<int> exited{0};
    uint32_t op[WARP];        // each lane's (op << 8 | argument), checked for agreement
    uint32_t slot[WARP][SLOT_WORDS];
};

inline Warp* block_warps = nullptr;  // the running block's warps
inline Warp& this_warp() { return block_warps[this_thread->linear / WARP]; }
inline int lane_id() { return int(this_thread->linear % WARP); }

[[noreturn]] inline void warp_fail(const char* what) {
    std::fprintf(stderr, "cuda_emu: %s (block %u,%u thread %u)\n", what, blockIdx.x, blockIdx.y,
                 threadIdx.x);
    std::fflush(stderr);
    std::abort();
}

// Publish this lane's words, wait for the warp, check that all lanes did the same thing.
inline void warp_publish(uint32_t tag, const uint32_t* words, int count) {
    Warp& w = this_warp();
    w.op[lane_id()] = tag;
    std::memcpy(w.slot[lane_id()], words, sizeof(uint32_t) * count);
    w.barrier.arrive_and_wait();
    if (w.exited.load() != 0) warp_fail("warp instruction after a lane of the warp returned");
    for (int l = 0; l < WARP; ++l)
        if (w.op[l] != tag) warp_fail("lanes of one warp are at different warp instructions");
}

inline void warp_done() { this_warp().barrier.arrive_and_wait(); }  // buffer free again

// ---- 16-bit floats, bit exact -------------------------------------------------------------
static_assert(sizeof(_Float16) == 2, "the emulator needs the compiler's _Float16 (g++ >= 12)");

// float16 -> float32 is exact; the compiler's conversion (libgcc's __extendhfsf2 on x86-64
// without AVX512-FP16) runs once for each of the 65536 bit patterns, when the library loads,
// not once per element (an mma converts 384 of them in each lane). The constructor is not
// constexpr, so g++ does not evaluate the table at compile time.
struct F16Values {
    float of[65536];
    F16Values() {
        for (uint32_t bits = 0; bits < 65536; ++bits)
            of[bits] = float(std::bit_cast<_Float16>(uint16_t(bits)));
    }
};
inline const F16Values f16_values;
inline float f16_to_float(uint16_t bits) { return f16_values.of[bits]; }
inline uint16_t float_to_f16_rn(float x) {  // IEEE conversion: round to nearest even
    return std::bit_cast<uint16_t>(static_cast<_Float16>(x));
}
inline float bf16_to_float(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }
inline uint16_t float_to_bf16_rn(float x) {
    const uint32_t u = std::bit_cast<uint32_t>(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN stays NaN
    return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);  // ties to even; overflow -> inf
}

template <int BF16>
inline float elem_to_float(uint16_t bits) { return BF16 ? bf16_to_float(bits) : f16_to_float(bits); }

template <int BF16>
inline unsigned pack_rn(float lo, float hi) {
    const auto cvt = BF16 ? float_to_bf16_rn : float_to_f16_rn;
    return unsigned(cvt(lo)) | (unsigned(cvt(hi)) << 16);
}

// ---- mma.m16n8k16 fragment layouts, as the PTX ISA writes them -----------------------------
struct RowCol {
    int row, col;
};
// element a_i (i = 0..7) of lane l; a_i is in register i / 2, half i % 2 (low half first)
constexpr RowCol a_element(int lane, int i) {
    const int group = lane >> 2, tig = lane % 4;
    const int row = (i < 2 || (4 <= i && i < 6)) ? group : group + 8;
    const int col = i < 4 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return {row, col};
}
// element b_i (i = 0..3) of lane l, register i / 2, half i % 2
constexpr RowCol b_element(int lane, int i) {
    const int group = lane >> 2, tig = lane % 4;
    const int row = i < 2 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
    return {row, group};
}
// element c_i = d_i (i = 0..3, one float32 register each) of lane l
constexpr RowCol c_element(int lane, int i) {
    const int group = lane >> 2, tig = lane % 4;
    return {i < 2 ? group : group + 8, tig * 2 + (i & 1)};
}

// D = A B + C for the warp; d holds C on entry and this lane's D on return.
template <int BF16>
inline void mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    const uint32_t words[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    const WarpOp op = BF16 ? WarpOp::mma_bf16 : WarpOp::mma_f16;
    warp_publish(uint32_t(op) << 8, words, 6);
    float A[16][16], B[16][8];
    const Warp& w = this_warp();
    for (int l = 0; l < WARP; ++l) {
        for (int i = 0; i < 8; ++i) {
            const RowCol rc = a_element(l, i);
            A[rc.row][rc.col] = elem_to_float<BF16>(uint16_t(w.slot[l][i / 2] >> (16 * (i % 2))));
        }
        for (int i = 0; i < 4; ++i) {
            const RowCol rc = b_element(l, i);
            B[rc.row][rc.col] = elem_to_float<BF16>(uint16_t(w.slot[l][4 + i / 2] >> (16 * (i % 2))));
        }
    }
    warp_done();
    for (int i = 0; i < 4; ++i) {
        const RowCol rc = c_element(lane_id(), i);
        float acc = d[i];  // products of two 16-bit floats are exact in float32
        for (int x = 0; x < 16; ++x) acc += A[rc.row][x] * B[x][rc.col];
        d[i] = acc;
    }
}

template <class T>
inline T shfl_xor(unsigned mask, T value, int lane_mask, int width) {
    static_assert(sizeof(T) == 4, "32-bit shuffles only");
    if (mask != 0xffffffffu) warp_fail("__shfl_xor_sync with a partial mask is not emulated");
    if (width != WARP) warp_fail("__shfl_xor_sync with width != 32 is not emulated");
    if (lane_mask < 0 || lane_mask >= WARP) warp_fail("__shfl_xor_sync lane mask out of range");
    const uint32_t word = std::bit_cast<uint32_t>(value);
    warp_publish(uint32_t(WarpOp::shfl_xor) << 8 | uint32_t(lane_mask), &word, 1);
    const uint32_t got = this_warp().slot[lane_id() ^ lane_mask][0];
    warp_done();
    return std::bit_cast<T>(got);
}

// kernel<<<grid, block>>>(args...) with warps: threads 32w .. 32w+31 (x fastest) form warp w.
template <class Kernel, class... Args>
void launch_warps(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    const unsigned threads_per_block = block.x * block.y * block.z;
    if (threads_per_block % WARP != 0) {
        std::fprintf(stderr, "cuda_emu: block of %u threads is not whole warps\n", threads_per_block);
        std::abort();
    }
    std::unique_ptr<Warp[]> warps;
    auto before_block = [&] {
        warps.reset(new Warp[threads_per_block / WARP]);
        block_warps = warps.get();
    };
    launch_with(grid, block, before_block, [&](const Thread&) {
        kernel(args...);
        Warp& warp = this_warp();
        warp.exited.fetch_add(1);
        warp.barrier.arrive_and_drop();
    });
}

}  // namespace cuda_emu

template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
    return cuda_emu::shfl_xor(mask, value, lane_mask, width);
}

// Expanded in the kernel, after its #define INPUT_BF16.
#define mma_16816(d, a, b) cuda_emu::mma_16816<INPUT_BF16>(d, a, b)
#define pack_rn(lo, hi) cuda_emu::pack_rn<INPUT_BF16>(lo, hi)
