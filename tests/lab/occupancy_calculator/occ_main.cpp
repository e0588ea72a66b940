// Reads "major minor max_threads_per_sm shared_per_sm reserved threads registers shared" lines;
// writes NVIDIA's occupancy calculator's answer for each:
// "blocks by_warps by_registers by_shared by_blocks" (-1: no limit).
#include <climits>
#include <cstdio>
#include "cuda_occupancy.h"

static long long limit(int n) { return n == INT_MAX ? -1 : n; }

int main() {
    int major, minor, max_threads, threads, registers;
    size_t shared_sm, reserved, shared;
    while (std::scanf("%d %d %d %zu %zu %d %d %zu", &major, &minor, &max_threads, &shared_sm,
                      &reserved, &threads, &registers, &shared) == 8) {
        cudaOccDeviceProp prop;
        prop.computeMajor = major;
        prop.computeMinor = minor;
        prop.maxThreadsPerBlock = 1024;
        prop.maxThreadsPerMultiprocessor = max_threads;
        prop.regsPerBlock = 65536;
        prop.regsPerMultiprocessor = 65536;
        prop.warpSize = 32;
        prop.sharedMemPerBlock = 48 * 1024;
        prop.sharedMemPerMultiprocessor = shared_sm;
        prop.numSms = 1;
        prop.sharedMemPerBlockOptin = shared_sm - reserved;
        prop.reservedSharedMemPerBlock = reserved;
        cudaOccFuncAttributes attr;
        attr.maxThreadsPerBlock = 1024;
        attr.numRegs = registers;
        attr.sharedSizeBytes = shared;
        cudaOccDeviceState state;
        cudaOccResult result;
        cudaOccError status =
            cudaOccMaxActiveBlocksPerMultiprocessor(&result, &prop, &attr, &state, threads, 0);
        if (status != CUDA_OCC_SUCCESS) {
            std::printf("error %d\n", static_cast<int>(status));
            continue;
        }
        std::printf("%d %lld %lld %lld %lld\n", result.activeBlocksPerMultiprocessor,
                    limit(result.blockLimitWarps), limit(result.blockLimitRegs),
                    limit(result.blockLimitSharedMem), limit(result.blockLimitBlocks));
    }
    return 0;
}
