// One kernel run read from a file, for a ThreadSanitizer build (no Python in the process).
// Built with harness.cpp and its -D flags (INPUT_T: the element type of q, k, v).
// Usage: tsan_runner IN OUT
//   IN:  int32 batch_heads n_q n_k d causal causal_offset grid_x grid_y block_x,
//        float32 scale, then q (bh, n_q, d), k and v (bh, n_k, d) as INPUT_T
//   OUT: o (bh, n_q, d) then lse (bh, n_q), float32
#include <cstdio>
#include <limits>
#include <vector>

extern "C" void run_kernel(const INPUT_T* q, const INPUT_T* k, const INPUT_T* v, float* o,
                           float* lse, int n_q, int n_k, int d, float scale, int causal,
                           int causal_offset, unsigned grid_x, unsigned grid_y, unsigned block_x);

static bool read_all(FILE* f, void* dst, size_t bytes) { return fread(dst, 1, bytes, f) == bytes; }

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* in = fopen(argv[1], "rb");
    int h[9];
    float scale;
    if (!in || !read_all(in, h, sizeof h) || !read_all(in, &scale, sizeof scale)) return 3;
    const int bh = h[0], n_q = h[1], n_k = h[2], d = h[3];
    std::vector<INPUT_T> q(size_t(bh) * n_q * d), k(size_t(bh) * n_k * d), v(k.size());
    const float nan = std::numeric_limits<float>::quiet_NaN();  // poison: all must be written
    std::vector<float> o(q.size(), nan), lse(size_t(bh) * n_q, nan);
    const size_t in_bytes = sizeof(INPUT_T);
    if (!read_all(in, q.data(), q.size() * in_bytes) ||
        !read_all(in, k.data(), k.size() * in_bytes) || !read_all(in, v.data(), v.size() * in_bytes))
        return 4;
    fclose(in);
    run_kernel(q.data(), k.data(), v.data(), o.data(), lse.data(), n_q, n_k, d, scale, h[4], h[5],
               unsigned(h[6]), unsigned(h[7]), unsigned(h[8]));
    FILE* out = fopen(argv[2], "wb");
    if (!out) return 5;
    fwrite(o.data(), 4, o.size(), out);
    fwrite(lse.data(), 4, lse.size(), out);
    fclose(out);
    return 0;
}
