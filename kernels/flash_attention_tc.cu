// FlashAttention-2 forward on tensor cores: float16 or bfloat16 inputs,
// float32 accumulation and float32 softmax state (m_i, l_i), Q K^T and P~ V as mma.sync.
//
// Same algorithm, arguments and "phase:" markers (same names, same order) as
// kernels/flash_attention.cu; what changes is who owns what and how the products are formed.
// The numbers follow flashviz.core.trace.record_steps(precision="float16" / "bfloat16"):
// s_ij is the float32 sum of exact 16-bit products, l_i sums the unrounded float32 P~, and
// P~ is rounded to the input type (round to nearest even) only for the P~ V product.
//
// Inputs: contiguous (batch_heads, n, d) arrays of 16-bit floats, passed as their raw bits
// (unsigned short: no cuda_fp16.h, which NVRTC from the pip wheel cannot find without the
// runtime headers on its include path, and which the CPU emulator would have to imitate).
// Outputs, as the float32 kernel: o (batch_heads, n_q, d) and lse (batch_heads, n_q) in
// float32, so the emulator's result compares with the trace without a further rounding
// (flash-attn writes o in the input type: a one-line change at phase normalize).
// The mask (block mask lists, element mask) and grouped-query heads as the float32 kernel's.
// Launch: grid = (ceil(n_q / BLOCK_Q), batch_heads), block = NUM_THREADS = 32 * BLOCK_Q / 16.
//
// Compile-time sizes, prepended as #defines (flashviz/gpu/launch_params.py tc_kernel_source):
//   BLOCK_Q      query rows per block: 16 per warp (FA2's split-Q: each warp owns its rows)
//   BLOCK_KV     key/value rows per tile, a multiple of 16 (the k of the P~ V mma)
//   HEAD_DIM     head dim of the shared tiles, a multiple of 16, >= d (extra columns zero)
//   NUM_THREADS  threads per block, 32 * BLOCK_Q / 16
//   INPUT_BF16   1: bfloat16 inputs, 0: float16
//   RESCALE_MARGIN  FA4's rescale threshold in natural-log units (0.0f: FA2)
//
// ---- Why mma.sync and not WMMA ----------------------------------------------------------
// nvcuda::wmma fragments are opaque: which lane holds which element of an accumulator is
// unspecified ("may change in future architectures"). FA2 needs, right after S = Q K^T,
// per-row work on S: the row max, exp(s - m), the row sum, then diag(alpha) O and P~ as the
// left operand of the next product. With WMMA the kernel may not rely on any layout, so S
// would have to go through shared memory (store_matrix_sync, row work by a known owner,
// load_matrix_sync back as a 16-bit matrix_a), and so would O for diag(alpha) O (or a
// fresh P~ V fragment per tile, stored and added by known owners): three shared-memory
// round trips per tile and barriers around them. For the emulator it would also leave a
// trap: it must pick *some* layout, and a kernel that silently depended on the emulator's
// choice (say, a row max taken across an accumulator's x[]) would pass on the CPU and fail
// on a GPU; only a second, different emulated layout would catch it.
//
// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16} has its lane <-> element mapping fixed
// by the PTX ISA ("Matrix fragments for mma.m16n8k16 with floating point type"). With
// groupID g = lane >> 2 and threadID_in_group t = lane % 4:
//   A (16 x 16, 4 regs of 2 x 16 bit): reg0 (row g,   cols 2t, 2t+1)  reg1 (row g+8, 2t..)
//                                      reg2 (row g,   cols 2t+8, 2t+9) reg3 (row g+8, 2t+8..)
//   B (16 x 8,  2 regs):               reg0 (rows k = 2t, 2t+1, col g) reg1 (k = 2t+8, 2t+9)
//   C, D (16 x 8 float32, 4 regs):     c0, c1 (row g, cols 2t, 2t+1)  c2, c3 (row g+8, ...)
// (the lower 16 bits of a register hold the element with the smaller index). So:
//   * a row of an S tile lives in the 4 lanes of one quad (4g .. 4g+3), 2 columns each per
//     8-column n-tile: the row max is the lane's own max, then two __shfl_xor_sync (1, 2);
//     the row sum needs no shuffle until the end (each lane keeps l_part over its columns,
//     phase reduce, as the float32 kernel and flash-attn do);
//   * the C layout of two adjacent n-tiles of S is exactly the A layout of a 16 x 16 block
//     of P~: P~ goes from the score registers into the P~ V mma as A operand without
//     shared memory (pack_rn: two float32 -> one register of two 16-bit values);
//   * the same C layout for O makes diag(alpha) O a per-register multiply (c0, c1 by the
//     alpha of row g, c2, c3 by the alpha of row g+8).
// The CPU emulator (tests/gpu/cuda_emulation/cuda_emu_warp.h) implements the instruction
// from that same table, and tests/gpu/test_mma_layout.py, written from the ISA's text, pins
// it there lane by lane; tests/gpu/test_tc_kernel.py runs this kernel on it.
//
// ---- Who owns what ------------------------------------------------------------------------
// Warp w owns the 16 rows w*16 .. w*16+15 of the query block, in every product and in the
// softmax state; lane (g, t) of it owns rows g and g+8 (h = 0, 1 below) and, in each 8-column
// n-tile, the columns 2t and 2t+1, of S (s[n][.]) and of O (o_acc[n][.]). Warps never
// exchange data: the only block-wide barriers are around the shared K/V tiles (and Q).
//
// Shared memory (static, sized by the #defines; the CPU emulator maps it to function-static):
// tiles are stored as 32-bit words of two 16-bit elements, the unit the fragments are read
// in, with 4 spare words a row: a row of (HEAD_DIM/2 + 4) words is 4 mod 8 words long, so the
// 8 rows x 4 words of one fragment load hit 32 different banks.
//   q_s[r][w]   = (q[r][2w], q[r][2w+1])                 Q tile, rows of the block
//   k_s[c][w]   = (k[c][2w], k[c][2w+1])                 K tile: B of Q K^T is K^T, "col"
//   vt_s[x][w]  = (v[2w][x], v[2w+1][x])                 V tile transposed: B of P~ V
// V is transposed while it is stored (flash-attn keeps V as is and reads it with
// ldmatrix.trans; plain 32-bit loads keep the emulator to one warp instruction, mma).
//
// Instruction helpers (mma_16816, pack_rn) are inline PTX on the GPU; under a host
// compiler (no __CUDA_ARCH__) the CPU emulator supplies them, with __shfl_xor_sync.

#define NUM_WARPS (NUM_THREADS / 32)
#define N_TILES_KV (BLOCK_KV / 8)   // 8-column n-tiles of S
#define N_TILES_D (HEAD_DIM / 8)    // 8-column n-tiles of O
#define ROW_WORDS_D (HEAD_DIM / 2 + 4)   // words a row of q_s, k_s
#define ROW_WORDS_KV (BLOCK_KV / 2 + 4)  // words a row of vt_s

static_assert(NUM_THREADS % 32 == 0 && NUM_WARPS * 16 == BLOCK_Q,
              "each warp owns 16 query rows: NUM_THREADS must be 32 * BLOCK_Q / 16");
static_assert(BLOCK_KV % 16 == 0, "BLOCK_KV must be a multiple of 16 (k of the P~ V mma)");
static_assert(HEAD_DIM % 16 == 0, "HEAD_DIM must be a multiple of 16 (k of the Q K^T mma)");
static_assert(INPUT_BF16 == 0 || INPUT_BF16 == 1, "INPUT_BF16 must be 0 or 1");

#include "attention_mask.cuh"  // NEG_INF, the tile lists, the element mask: as flashviz/core
#define FULL_WARP 0xffffffffu

#ifdef __CUDA_ARCH__
// D = A B + D for one 16 x 8 x 16 tile, float32 accumulate (PTX ISA: mma.sync.aligned).
__device__ __forceinline__ void mma_16816(float (&d)[4], const unsigned (&a)[4],
                                          const unsigned (&b)[2]) {
#if INPUT_BF16
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
#endif
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two float32 rounded to nearest even into one register: lo in bits 0-15, hi in 16-31
// (cvt's first source goes to the upper half).
__device__ __forceinline__ unsigned pack_rn(float lo, float hi) {
    unsigned packed;
#if INPUT_BF16
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(hi), "f"(lo));
#else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(packed) : "f"(hi), "f"(lo));
#endif
    return packed;
}
#endif  // __CUDA_ARCH__ (else: tests/gpu/cuda_emulation supplies mma_16816 and pack_rn)

// Rows [start, start + ROWS) of a contiguous (n, d) matrix of 16-bit values into a shared
// tile of words (row r, word w = elements 2w, 2w+1). Rows past n, columns past d: 0.
template <int ROWS>
__device__ void load_rows(unsigned (*tile)[ROW_WORDS_D], const unsigned short* src, int start,
                          int n, int d) {
    for (int idx = threadIdx.x; idx < ROWS * (HEAD_DIM / 2); idx += NUM_THREADS) {
        const int r = idx / (HEAD_DIM / 2), c = 2 * (idx % (HEAD_DIM / 2));
        const int row = start + r;
        const unsigned short* p = src + (long long)row * d + c;
        const unsigned lo = (row < n && c < d) ? p[0] : 0u;
        const unsigned hi = (row < n && c + 1 < d) ? p[1] : 0u;
        tile[r][c / 2] = lo | (hi << 16);
    }
}

// Rows [start, start + BLOCK_KV) of v, transposed: word (x, w) = (v[2w][x], v[2w+1][x]).
__device__ void load_v_transposed(unsigned (*tile)[ROW_WORDS_KV], const unsigned short* src,
                                  int start, int n, int d) {
    for (int idx = threadIdx.x; idx < HEAD_DIM * (BLOCK_KV / 2); idx += NUM_THREADS) {
        const int x = idx % HEAD_DIM, w = idx / HEAD_DIM;  // x fastest: coalesced reads
        const int row = start + 2 * w;
        const unsigned lo = (row < n && x < d) ? src[(long long)row * d + x] : 0u;
        const unsigned hi = (row + 1 < n && x < d) ? src[(long long)(row + 1) * d + x] : 0u;
        tile[x][w] = lo | (hi << 16);
    }
}

// __launch_bounds__: NUM_THREADS a block, at least 1 block an SM. With no minimum, ptxas
// held some builds (HEAD_DIM 16, sm_86 and newer) to 80 registers and spilled
// (tests/gpu/test_tc_kernel.py checks).
extern "C" __global__ void __launch_bounds__(NUM_THREADS, 1)
flash_attention_tc_fwd(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
                       const unsigned short* __restrict__ v, float* __restrict__ o,
                       float* __restrict__ lse, const int* __restrict__ kv_num_blocks,
                       const int* __restrict__ kv_indices, const int* __restrict__ full_kv_num_blocks,
                       const int* __restrict__ full_kv_indices, const int* __restrict__ doc_ids,
                       float scale, int n_q, int n_k, int d, int group, int heads, int mask_batches,
                       int mask_heads, int causal, int causal_offset, int mask_kind, int mask_a,
                       int mask_b, int mask_c) {
    __shared__ unsigned q_s[BLOCK_Q][ROW_WORDS_D];
    __shared__ unsigned k_s[BLOCK_KV][ROW_WORDS_D];
    __shared__ unsigned vt_s[HEAD_DIM][ROW_WORDS_KV];

    const int head = blockIdx.y;  // query head b * heads + h
    const int kv_head = head / group;  // the K/V head it reads (group query heads share one)
    const int q_start = blockIdx.x * BLOCK_Q;  // first query row of block i
    const int lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3;      // groupID, threadID_in_group (PTX ISA)
    const int wrow = (threadIdx.x / 32) * 16;   // first row of this warp in the block
    q += (long long)head * n_q * d;
    k += (long long)kv_head * n_k * d;
    v += (long long)kv_head * n_k * d;
    o += (long long)head * n_q * d;
    lse += (long long)head * n_q;

    // phase:init  m_i = -inf, l_part = 0, o_i = 0  (rows g and g+8 of the warp's 16: h = 0, 1)
    float m_i[2] = {NEG_INF, NEG_INF}, l_part[2] = {0.0f, 0.0f};
    float o_acc[N_TILES_D][4];
#pragma unroll
    for (int n = 0; n < N_TILES_D; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) o_acc[n][e] = 0.0f;
    load_rows<BLOCK_Q>(q_s, q, q_start, n_q, d);

    // the block mask's partial and full tiles of block i (empty tiles: never visited)
    const TileLists tiles = block_tiles(kv_num_blocks, kv_indices, full_kv_num_blocks,
                                        full_kv_indices, head, heads, mask_batches, mask_heads,
                                        n_q, n_k);
    const ElementMask mask = {mask_kind, mask_a, mask_b, mask_c, doc_ids, causal, causal_offset};

    for (int p = 0, f = 0; p + f < tiles.n_partial + tiles.n_full;) {
        const bool full = next_is_full(tiles, p, f);  // the next tile, in increasing j
        const int j = full ? tiles.full[f++] : tiles.partial[p++];
        const int kv_start = j * BLOCK_KV;
        load_rows<BLOCK_KV>(k_s, k, kv_start, n_k, d);        // k_j
        load_v_transposed(vt_s, v, kv_start, n_k, d);         // v_j (a load, in no phase)
        __syncthreads();  // q_i, k_j and v_j are in shared memory

        // phase:scores  s_ij = scale * q_i k_j^T, masked entries = -inf  (mma: A = q_i, B = k_j^T)
        float s[N_TILES_KV][4];
#pragma unroll
        for (int n = 0; n < N_TILES_KV; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
            const unsigned a[4] = {q_s[wrow + g][8 * kk + t], q_s[wrow + g + 8][8 * kk + t],
                                   q_s[wrow + g][8 * kk + t + 4], q_s[wrow + g + 8][8 * kk + t + 4]};
#pragma unroll
            for (int n = 0; n < N_TILES_KV; ++n) {
                const unsigned b[2] = {k_s[8 * n + g][8 * kk + t], k_s[8 * n + g][8 * kk + t + 4]};
                mma_16816(s[n], a, b);
            }
        }
#pragma unroll
        for (int n = 0; n < N_TILES_KV; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = q_start + wrow + g + 8 * (e >> 1);
                const int col = kv_start + 8 * n + 2 * t + (e & 1);
                const bool seen = visible(mask, full, row, col, n_k);
                s[n][e] = seen ? s[n][e] * scale : NEG_INF;
            }

        // phase:max  m_new = max(m_i, rowmax(s_ij))  (the lane's columns, then its quad's)
        float m_new[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float part = NEG_INF;
#pragma unroll
            for (int n = 0; n < N_TILES_KV; ++n) part = fmaxf(part, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
            part = fmaxf(part, __shfl_xor_sync(FULL_WARP, part, 1));
            part = fmaxf(part, __shfl_xor_sync(FULL_WARP, part, 2));
            m_new[h] = lazy_max(m_i[h], fmaxf(m_i[h], part));  // kept unless past the threshold
        }

        float alpha[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            // a row with no key yet: subtract 0 instead of -inf, so exp gives 0, not NaN
            const float m_safe = m_new[h] == NEG_INF ? 0.0f : m_new[h];
            // phase:exp  p_ij = exp(s_ij - m_new)  (in place: s holds P~ from here on)
            float row_sum = 0.0f;
#pragma unroll
            for (int n = 0; n < N_TILES_KV; ++n)
#pragma unroll
                for (int e = 2 * h; e < 2 * h + 2; ++e) {
                    s[n][e] = expf(s[n][e] - m_safe);
                    row_sum += s[n][e];
                }
            // phase:alpha  alpha = exp(m_i - m_new)
            alpha[h] = expf(m_i[h] - m_safe);
            // phase:sum  l_part = alpha * l_part + rowsum(p_ij)  (this lane's columns, unrounded P~)
            l_part[h] = alpha[h] * l_part[h] + row_sum;
        }

        // phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j  (P~ rounded to 16 bits: A = P~, B = v_j)
#pragma unroll
        for (int n = 0; n < N_TILES_D; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) o_acc[n][e] *= alpha[e >> 1];
#pragma unroll
        for (int kk = 0; kk < BLOCK_KV / 16; ++kk) {
            // the C layout of n-tiles 2kk, 2kk+1 of S is the A layout of P~'s 16 x 16 block kk
            const unsigned a[4] = {pack_rn(s[2 * kk][0], s[2 * kk][1]), pack_rn(s[2 * kk][2], s[2 * kk][3]),
                                   pack_rn(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   pack_rn(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < N_TILES_D; ++n) {
                const unsigned b[2] = {vt_s[8 * n + g][8 * kk + t], vt_s[8 * n + g][8 * kk + t + 4]};
                mma_16816(o_acc[n], a, b);
            }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) m_i[h] = m_new[h];
        __syncthreads();  // everyone is done with k_j and v_j before the next tile overwrites them
    }

    // phase:reduce  l_i = sum of l_part over the row's quad (lanes 4g .. 4g+3)
    float l_i[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_i[h] = l_part[h] + __shfl_xor_sync(FULL_WARP, l_part[h], 1);
        l_i[h] += __shfl_xor_sync(FULL_WARP, l_i[h], 2);
    }

    // phase:normalize  o_i = diag(l_i)^-1 o_i  (rows with no key: l_i = 0, o_i stays 0)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = q_start + wrow + g + 8 * h;
        if (row >= n_q) continue;
        const float l_safe = l_i[h] == 0.0f ? 1.0f : l_i[h];
#pragma unroll
        for (int n = 0; n < N_TILES_D; ++n)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int col = 8 * n + 2 * t + e;
                if (col < d) o[(long long)row * d + col] = o_acc[n][2 * h + e] / l_safe;
            }
        // phase:lse  L_i = m_i + log(l_i)  (-inf for a row with no key)
        if (t == 0) lse[row] = m_i[h] + logf(l_i[h]);
    }
}
