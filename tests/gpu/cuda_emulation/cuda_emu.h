// CUDA built-ins for running a kernel's own source on the CPU (C++20, g++).
//
// One std::thread per CUDA thread, one block at a time over the whole grid:
//   __shared__      -> function-static (one block runs at a time, so its threads share it)
//   threadIdx, ...  -> thread_local, set by the driver before the kernel body runs
//   __syncthreads() -> std::barrier::arrive_and_wait over the block's threads
// A thread that leaves the kernel (return, or the end) drops out of the barrier, so the
// others do not wait for it. A __syncthreads() only some threads reach deadlocks, as on a
// GPU it is undefined: the tests run under a timeout.
// Only what kernels/flash_attention.cu uses is defined (no warp shuffles, no atomics).
#pragma once

#include <math.h>

#include <algorithm>
#include <barrier>
#include <bit>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

using std::max;
using std::min;

inline float __int_as_float(unsigned bits) { return std::bit_cast<float>(bits); }

namespace cuda_emu {
inline std::barrier<>* block_barrier = nullptr;  // the running block's barrier
}

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }

namespace cuda_emu {

// kernel<<<grid, block>>>(args...): blocks in order, each with its own threads and barrier.
template <class Kernel, class... Args>
void launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    gridDim = grid;
    blockDim = block;
    const unsigned threads_per_block = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::barrier<> barrier(threads_per_block);
                block_barrier = &barrier;
                std::vector<std::thread> threads;
                threads.reserve(threads_per_block);
                for (unsigned tz = 0; tz < block.z; ++tz)
                    for (unsigned ty = 0; ty < block.y; ++ty)
                        for (unsigned tx = 0; tx < block.x; ++tx)
                            threads.emplace_back([&, tx, ty, tz] {
                                threadIdx = {tx, ty, tz};
                                blockIdx = {bx, by, bz};
                                kernel(args...);
                                barrier.arrive_and_drop();
                            });
                for (auto& t : threads) t.join();
            }
}

}  // namespace cuda_emu
