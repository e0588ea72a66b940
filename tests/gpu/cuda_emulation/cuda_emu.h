// CUDA built-ins for running a kernel's own source on the CPU (C++20, g++).
//
// One block at a time over the whole grid; in a block, one fiber per CUDA thread:
//   __shared__      -> function-static (one block runs at a time, so its threads share it)
//   threadIdx       -> the running thread's index (this_thread), blockIdx a global
//   __syncthreads() -> the block's Barrier
// Fibers (ucontext) run in turn on the calling thread: a fiber runs until it waits at a
// barrier, then the next one runs, so a launch costs no OS threads and takes the same path
// on every run, however busy the machine. A ThreadSanitizer build (__SANITIZE_THREAD__) runs
// one std::thread per CUDA thread instead, so that TSan sees them run at once and reports
// what a missing barrier leaves unordered.
// A thread that leaves the kernel (return, or the end) drops out of the barrier, so the
// others do not wait for it. A __syncthreads() only some threads reach is undefined on a GPU:
// with fibers it aborts ("deadlock"), with std::threads it hangs (the tests run under a timeout).
// Only what the kernels use is defined (warp instructions: cuda_emu_warp.h).
#pragma once

#include <math.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#include <barrier>
#include <thread>
#else
#include <ucontext.h>
#endif

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_emu {

struct Thread {  // one CUDA thread of the running block
    dim3 idx;
    unsigned linear;  // x fastest: warp linear / 32, lane linear % 32
};
inline thread_local const Thread* this_thread = nullptr;

}  // namespace cuda_emu

#define threadIdx (cuda_emu::this_thread->idx)
inline dim3 blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(...)

using std::max;
using std::min;

inline float __int_as_float(unsigned bits) { return std::bit_cast<float>(bits); }

namespace cuda_emu {

#if defined(__SANITIZE_THREAD__)

using Barrier = std::barrier<>;

// Every thread of the block at once, each a std::thread running body(thread).
template <class Body>
void run_block(const std::vector<Thread>& threads, Body& body) {
    std::vector<std::thread> running;
    running.reserve(threads.size());
    for (const Thread& t : threads)
        running.emplace_back([&body, &t] {
            this_thread = &t;
            body(t);
        });
    for (auto& t : running) t.join();
}

#else

namespace fiber {
inline ucontext_t scheduler;             // run_block's loop
inline ucontext_t* running = nullptr;    // the fiber running now
inline unsigned long long progress = 0;  // barrier arrivals and exits so far
inline void yield() { swapcontext(running, &scheduler); }
}  // namespace fiber

// std::barrier's arrive_and_wait and arrive_and_drop, for fibers: a waiting fiber yields
// until the phase it arrived in completes.
class Barrier {
  public:
    explicit Barrier(std::ptrdiff_t expected) : expected_(expected) {}
    void arrive_and_wait() {
        ++fiber::progress;
        const unsigned long long phase = phase_;
        if (++arrived_ == expected_) return complete();
        while (phase_ == phase) fiber::yield();
    }
    void arrive_and_drop() {
        ++fiber::progress;
        if (arrived_ == --expected_) complete();
    }

  private:
    void complete() {
        arrived_ = 0;
        ++phase_;
    }
    std::ptrdiff_t expected_, arrived_ = 0;
    unsigned long long phase_ = 0;
};

namespace fiber {
constexpr std::size_t STACK_BYTES = 128 * 1024;
inline void (*start)(void*) = nullptr;  // what a fiber runs: start(start_arg)
inline void* start_arg = nullptr;
inline bool exited = false;  // set by the fiber that just returned
inline void entry() {
    start(start_arg);
    exited = true;  // then uc_link: back to the scheduler
}
}  // namespace fiber

// Every thread of the block as a fiber running body(thread), in turn until all have left.
template <class Body>
void run_block(const std::vector<Thread>& threads, Body& body) {
    struct Fiber {
        ucontext_t context;
        std::unique_ptr<char[]> stack{new char[fiber::STACK_BYTES]};
        bool done = false;
    };
    std::vector<Fiber> fibers(threads.size());
    for (Fiber& f : fibers) {
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.get();
        f.context.uc_stack.ss_size = fiber::STACK_BYTES;
        f.context.uc_link = &fiber::scheduler;
        makecontext(&f.context, fiber::entry, 0);
    }
    fiber::start = [](void* b) { (*static_cast<Body*>(b))(*this_thread); };
    fiber::start_arg = &body;
    for (std::size_t live = fibers.size(); live > 0;) {
        const unsigned long long before = fiber::progress;
        for (std::size_t i = 0; i < fibers.size(); ++i) {
            if (fibers[i].done) continue;
            this_thread = &threads[i];
            fiber::running = &fibers[i].context;
            fiber::exited = false;
            swapcontext(&fiber::scheduler, &fibers[i].context);
            if (fiber::exited) {
                fibers[i].done = true;
                --live;
            }
        }
        if (live > 0 && fiber::progress == before) {
            std::fprintf(stderr, "cuda_emu: deadlock in block %u,%u: %zu threads wait at a "
                         "barrier the others never reach\n", blockIdx.x, blockIdx.y, live);
            std::fflush(stderr);
            std::abort();
        }
    }
}

#endif

inline Barrier* block_barrier = nullptr;  // the running block's __syncthreads()

// The grid, block by block: before_block() sets up block-wide state, then every thread runs
// thread_body(thread) and leaves the block's barrier.
template <class BeforeBlock, class ThreadBody>
void launch_with(dim3 grid, dim3 block, BeforeBlock before_block, ThreadBody thread_body) {
    gridDim = grid;
    blockDim = block;
    std::vector<Thread> threads;
    for (unsigned tz = 0; tz < block.z; ++tz)
        for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx)
                threads.push_back({{tx, ty, tz}, unsigned(threads.size())});
    auto body = [&](const Thread& t) {
        thread_body(t);
        block_barrier->arrive_and_drop();
    };
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                blockIdx = {bx, by, bz};
                Barrier barrier(std::ptrdiff_t(threads.size()));
                block_barrier = &barrier;
                before_block();
                run_block(threads, body);
            }
}

// kernel<<<grid, block>>>(args...)
template <class Kernel, class... Args>
void launch(dim3 grid, dim3 block, Kernel kernel, Args... args) {
    launch_with(grid, block, [] {}, [&](const Thread&) { kernel(args...); });
}

}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::block_barrier->arrive_and_wait(); }
