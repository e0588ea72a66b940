// FlashAttention-2 forward (Dao 2023, arXiv 2307.08691, Algorithm 1) in CUDA C, float32.
//
// One thread block per (query block i, batch*head). The state of the query block
// (m_i, l_i, o_i) stays in registers, l_i as each thread's share l_part (below); K/V tiles
// pass through shared memory; O is normalised once, after the last tile. The "phase:"
// markers are those of flashviz/core/inner_step.py, in the same order, so both sources
// can be read side by side; the kernel has one more, reduce (below).
//
// Inputs: q is a contiguous (batch_heads, n_q, d) array, k and v (batch_heads / group, n_k, d)
// (grouped-query attention: query head `head` reads K/V head head / group); o is
// (batch_heads, n_q, d) and lse (batch_heads, n_q), the natural-log logsumexp. The mask is
// FlexAttention's: the block mask's lists (kv_num_blocks, kv_indices, full_kv_num_blocks,
// full_kv_indices; (mask_batches, mask_heads, Q blocks[, K/V blocks]) int32) say which tiles
// a Q block visits, and a built-in element mask (mask_kind, mask_a/b/c, doc_ids, causal,
// causal_offset) which entries of a partial tile are seen (kernels/attention_mask.cuh).
// Launch (flashviz/gpu/launch_params.py): grid = (ceil(n_q / BLOCK_Q), batch_heads),
// block = NUM_THREADS.
//
// Compile-time sizes, prepended as #defines by flashviz/gpu/launch_params.py (kernel_source):
//   BLOCK_Q          query rows per block (B_r in the paper)
//   BLOCK_KV         key/value rows per tile (B_c)
//   HEAD_DIM         head dim of the shared tiles, >= d (extra columns are zeros)
//   NUM_THREADS      threads per block
//   RESCALE_MARGIN   FA4's rescale threshold in natural-log units (0.0f: FA2)
//   THREADS_PER_ROW  threads sharing a group of rows; each takes every
//                    THREADS_PER_ROW-th column of S and of O
//
// Thread t owns ROWS_PER_THREAD consecutive rows, starting at row0, and the columns
// col0, col0 + THREADS_PER_ROW, ... of its rows of s_ij (a register tile) and of o_i.
// Row maxima and sums need the whole row: they go through shared memory (row_part). The
// row max is gathered in every tile (phase max); the row sum only once, after the last
// tile: until then each thread keeps l_part, the sum over its own columns, and
// l_i = sum of the l_part of the row's THREADS_PER_ROW threads (phase reduce, which the
// Python inner step does not need: its l_i holds the whole row from the start).

#define ROWS_PER_THREAD (BLOCK_Q * THREADS_PER_ROW / NUM_THREADS)
#define COLS_PER_THREAD (BLOCK_KV / THREADS_PER_ROW)
#define DIMS_PER_THREAD (HEAD_DIM / THREADS_PER_ROW)
#define PAD 1  // one spare float per shared row: a column read hits 32 different banks

static_assert(NUM_THREADS % THREADS_PER_ROW == 0, "NUM_THREADS must split into row groups");
static_assert(ROWS_PER_THREAD * (NUM_THREADS / THREADS_PER_ROW) == BLOCK_Q,
              "row groups must cover BLOCK_Q exactly");
static_assert(COLS_PER_THREAD * THREADS_PER_ROW == BLOCK_KV, "THREADS_PER_ROW must divide BLOCK_KV");
static_assert(DIMS_PER_THREAD * THREADS_PER_ROW == HEAD_DIM, "THREADS_PER_ROW must divide HEAD_DIM");

#include "attention_mask.cuh"  // NEG_INF, the tile lists, the element mask: as flashviz/core

// Copy rows [start, start + ROWS) of a contiguous (n, d) matrix into a shared tile.
// Rows past n and columns past d are filled with 0: they add nothing to a product.
template <int ROWS>
__device__ void load_tile(float (*tile)[HEAD_DIM + PAD], const float* src, int start, int n,
                          int d) {
    for (int idx = threadIdx.x; idx < ROWS * HEAD_DIM; idx += NUM_THREADS) {
        const int r = idx / HEAD_DIM, c = idx % HEAD_DIM;
        const int row = start + r;
        tile[r][c] = (row < n && c < d) ? src[(long long)row * d + c] : 0.0f;
    }
}

// __launch_bounds__: NUM_THREADS a block, at least 2 blocks an SM. With no minimum, ptxas
// squeezed some builds into 64 registers and spilled (tests/gpu/test_nvrtc.py checks).
extern "C" __global__ void __launch_bounds__(NUM_THREADS, 2)
flash_attention_fwd(const float* __restrict__ q, const float* __restrict__ k,
                    const float* __restrict__ v, float* __restrict__ o,
                    float* __restrict__ lse, const int* __restrict__ kv_num_blocks,
                    const int* __restrict__ kv_indices, const int* __restrict__ full_kv_num_blocks,
                    const int* __restrict__ full_kv_indices, const int* __restrict__ doc_ids,
                    float scale, int n_q, int n_k, int d, int group, int heads, int mask_batches,
                    int mask_heads, int causal, int causal_offset, int mask_kind, int mask_a,
                    int mask_b, int mask_c) {
    __shared__ float q_i[BLOCK_Q][HEAD_DIM + PAD];
    __shared__ float kv_j[BLOCK_KV][HEAD_DIM + PAD];  // k_j, then v_j in the same place
    __shared__ float p_ij[BLOCK_Q][BLOCK_KV + PAD];
    __shared__ float row_part[BLOCK_Q][THREADS_PER_ROW];  // one partial max/sum per thread

    const int head = blockIdx.y;  // query head b * heads + h
    const int kv_head = head / group;  // the K/V head it reads (group query heads share one)
    const int q_start = blockIdx.x * BLOCK_Q;  // first query row of block i
    const int row0 = (threadIdx.x / THREADS_PER_ROW) * ROWS_PER_THREAD;
    const int col0 = threadIdx.x % THREADS_PER_ROW;
    q += (long long)head * n_q * d;
    k += (long long)kv_head * n_k * d;
    v += (long long)kv_head * n_k * d;
    o += (long long)head * n_q * d;
    lse += (long long)head * n_q;

    // phase:init  m_i = -inf, l_part = 0, o_i = 0  (l_i = sum over the row's threads of l_part)
    float m_i[ROWS_PER_THREAD], l_part[ROWS_PER_THREAD], o_i[ROWS_PER_THREAD][DIMS_PER_THREAD];
#pragma unroll
    for (int a = 0; a < ROWS_PER_THREAD; ++a) {
        m_i[a] = NEG_INF;
        l_part[a] = 0.0f;
#pragma unroll
        for (int b = 0; b < DIMS_PER_THREAD; ++b) o_i[a][b] = 0.0f;
    }
    load_tile<BLOCK_Q>(q_i, q, q_start, n_q, d);

    // the block mask's partial and full tiles of block i (empty tiles: never visited)
    const TileLists tiles = block_tiles(kv_num_blocks, kv_indices, full_kv_num_blocks,
                                        full_kv_indices, head, heads, mask_batches, mask_heads,
                                        n_q, n_k);
    const ElementMask mask = {mask_kind, mask_a, mask_b, mask_c, doc_ids, causal, causal_offset};

    for (int p = 0, f = 0; p + f < tiles.n_partial + tiles.n_full;) {
        const bool full = next_is_full(tiles, p, f);  // the next tile, in increasing j
        const int j = full ? tiles.full[f++] : tiles.partial[p++];
        const int kv_start = j * BLOCK_KV;
        load_tile<BLOCK_KV>(kv_j, k, kv_start, n_k, d);  // k_j
        __syncthreads();  // q_i and k_j are in shared memory

        // phase:scores  s_ij = scale * q_i k_j^T, masked entries = -inf
        float s_ij[ROWS_PER_THREAD][COLS_PER_THREAD] = {};
#pragma unroll 4
        for (int x = 0; x < HEAD_DIM; ++x) {
            float k_x[COLS_PER_THREAD];
#pragma unroll
            for (int b = 0; b < COLS_PER_THREAD; ++b) k_x[b] = kv_j[col0 + b * THREADS_PER_ROW][x];
#pragma unroll
            for (int a = 0; a < ROWS_PER_THREAD; ++a) {
                const float q_x = q_i[row0 + a][x];
#pragma unroll
                for (int b = 0; b < COLS_PER_THREAD; ++b) s_ij[a][b] += q_x * k_x[b];
            }
        }
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) {
            const int row = q_start + row0 + a;
#pragma unroll
            for (int b = 0; b < COLS_PER_THREAD; ++b) {
                const int col = kv_start + col0 + b * THREADS_PER_ROW;
                const bool seen = visible(mask, full, row, col, n_k);
                s_ij[a][b] = seen ? s_ij[a][b] * scale : NEG_INF;
            }
        }

        // phase:max  m_new = max(m_i, rowmax(s_ij))  (each thread's columns, then the row's)
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) {
            float part = NEG_INF;
#pragma unroll
            for (int b = 0; b < COLS_PER_THREAD; ++b) part = fmaxf(part, s_ij[a][b]);
            row_part[row0 + a][col0] = part;
        }
        __syncthreads();  // all partial maxima written; nobody reads k_j any more
        float m_new[ROWS_PER_THREAD];
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) {
            m_new[a] = m_i[a];
            for (int t = 0; t < THREADS_PER_ROW; ++t) m_new[a] = fmaxf(m_new[a], row_part[row0 + a][t]);
            m_new[a] = lazy_max(m_i[a], m_new[a]);  // kept at m_i unless past the threshold (FA4)
        }

        // v_j replaces k_j in shared memory (a load, in no phase: the Python step is handed v_j)
        load_tile<BLOCK_KV>(kv_j, v, kv_start, n_k, d);

        float alpha[ROWS_PER_THREAD];
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) {
            // a row with no key yet: subtract 0 instead of -inf, so exp gives 0, not NaN
            const float m_safe = m_new[a] == NEG_INF ? 0.0f : m_new[a];
            // phase:exp  p_ij = exp(s_ij - m_new)
            float row_sum = 0.0f;
#pragma unroll
            for (int b = 0; b < COLS_PER_THREAD; ++b) {
                const float p = expf(s_ij[a][b] - m_safe);
                p_ij[row0 + a][col0 + b * THREADS_PER_ROW] = p;
                row_sum += p;
            }
            // phase:alpha  alpha = exp(m_i - m_new)
            alpha[a] = expf(m_i[a] - m_safe);
            // phase:sum  l_part = alpha * l_part + rowsum(p_ij)  (this thread's columns only)
            l_part[a] = alpha[a] * l_part[a] + row_sum;
        }
        __syncthreads();  // p_ij and v_j are in shared memory

        // phase:accumulate  o_i = diag(alpha) o_i + p_ij v_j
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) {
#pragma unroll
            for (int b = 0; b < DIMS_PER_THREAD; ++b) o_i[a][b] *= alpha[a];
        }
#pragma unroll 4
        for (int c = 0; c < BLOCK_KV; ++c) {
            float v_c[DIMS_PER_THREAD];
#pragma unroll
            for (int b = 0; b < DIMS_PER_THREAD; ++b) v_c[b] = kv_j[c][col0 + b * THREADS_PER_ROW];
#pragma unroll
            for (int a = 0; a < ROWS_PER_THREAD; ++a) {
                const float p = p_ij[row0 + a][c];
#pragma unroll
                for (int b = 0; b < DIMS_PER_THREAD; ++b) o_i[a][b] += p * v_c[b];
            }
        }
#pragma unroll
        for (int a = 0; a < ROWS_PER_THREAD; ++a) m_i[a] = m_new[a];
        __syncthreads();  // everyone is done with v_j and p_ij before the next tile
    }

    // phase:reduce  l_i = sum of l_part over the row's THREADS_PER_ROW threads
#pragma unroll
    for (int a = 0; a < ROWS_PER_THREAD; ++a) row_part[row0 + a][col0] = l_part[a];
    __syncthreads();  // every thread's share of l_i is in
    float l_i[ROWS_PER_THREAD];
#pragma unroll
    for (int a = 0; a < ROWS_PER_THREAD; ++a) {
        l_i[a] = 0.0f;
        for (int t = 0; t < THREADS_PER_ROW; ++t) l_i[a] += row_part[row0 + a][t];
    }

    // phase:normalize  o_i = diag(l_i)^-1 o_i  (rows with no key: l_i = 0, o_i stays 0)
#pragma unroll
    for (int a = 0; a < ROWS_PER_THREAD; ++a) {
        const int row = q_start + row0 + a;
        if (row >= n_q) continue;
        const float l_safe = l_i[a] == 0.0f ? 1.0f : l_i[a];
#pragma unroll
        for (int b = 0; b < DIMS_PER_THREAD; ++b) {
            const int col = col0 + b * THREADS_PER_ROW;
            if (col < d) o[(long long)row * d + col] = o_i[a][b] / l_safe;
        }
        // phase:lse  L_i = m_i + log(l_i)  (-inf for a row with no key)
        if (col0 == 0) lse[row] = m_i[a] + logf(l_i[a]);
    }
}
