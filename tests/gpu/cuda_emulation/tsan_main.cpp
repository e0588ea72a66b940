// One kernel run read from a file, for a ThreadSanitizer build (no Python in the process).
// Built with harness.cpp and its -D flags (INPUT_T: the element type of q, k, v).
// Usage: tsan_runner IN OUT
//   IN:  int32 q_heads kv_heads n_q n_k d grid_x grid_y block_x, the NUM_LISTS lengths of
//        the mask's arrays, float32 scale, int32 NUM_INTS ints (KernelCall.scalars[1:]),
//        the mask's arrays (int32), then q (q_heads, n_q, d), k and v (kv_heads, n_k, d)
//        as INPUT_T
//   OUT: o (q_heads, n_q, d) then lse (q_heads, n_q), float32
#include <cstdio>
#include <limits>
#include <vector>

extern "C" void run_kernel(const INPUT_T* q, const INPUT_T* k, const INPUT_T* v, float* o,
                           float* lse, const int* const* lists, float scale, const int* ints,
                           unsigned grid_x, unsigned grid_y, unsigned block_x);

static bool read_all(FILE* f, void* dst, size_t bytes) { return fread(dst, 1, bytes, f) == bytes; }

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* in = fopen(argv[1], "rb");
    int h[8], lengths[NUM_LISTS], ints[NUM_INTS];
    float scale;
    if (!in || !read_all(in, h, sizeof h) || !read_all(in, lengths, sizeof lengths) ||
        !read_all(in, &scale, sizeof scale) || !read_all(in, ints, sizeof ints))
        return 3;
    std::vector<int> lists[NUM_LISTS];
    const int* list_ptrs[NUM_LISTS];
    for (int i = 0; i < NUM_LISTS; ++i) {
        lists[i].resize(size_t(lengths[i]));
        if (!read_all(in, lists[i].data(), lists[i].size() * sizeof(int))) return 3;
        list_ptrs[i] = lists[i].data();
    }
    const int q_heads = h[0], kv_heads = h[1], n_q = h[2], n_k = h[3], d = h[4];
    std::vector<INPUT_T> q(size_t(q_heads) * n_q * d), k(size_t(kv_heads) * n_k * d), v(k.size());
    const float nan = std::numeric_limits<float>::quiet_NaN();  // poison: all must be written
    std::vector<float> o(q.size(), nan), lse(size_t(q_heads) * n_q, nan);
    const size_t in_bytes = sizeof(INPUT_T);
    if (!read_all(in, q.data(), q.size() * in_bytes) ||
        !read_all(in, k.data(), k.size() * in_bytes) || !read_all(in, v.data(), v.size() * in_bytes))
        return 4;
    fclose(in);
    run_kernel(q.data(), k.data(), v.data(), o.data(), lse.data(), list_ptrs, scale, ints,
               unsigned(h[5]), unsigned(h[6]), unsigned(h[7]));
    FILE* out = fopen(argv[2], "wb");
    if (!out) return 5;
    fwrite(o.data(), 4, o.size(), out);
    fwrite(lse.data(), 4, lse.size(), out);
    fclose(out);
    return 0;
}
