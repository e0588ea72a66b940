// What both kernels must agree on with flashviz/core: -inf, the K/V tiles a Q block visits
// (a block mask's lists, flashviz/core/block_mask.py) and which keys a row sees (a built-in
// mask, flashviz/core/masks.py MaskSpec). Included by flash_attention.cu and
// flash_attention_tc.cu; flashviz/gpu/launch_params.py (kernel_source) writes this text in
// place of the #include, after the #defines of the mask kinds (MASK_ALL, MASK_WINDOW, ...:
// flashviz.core.masks.MASK_KINDS), so NVRTC, CuPy and the CPU emulation compile one text.
#define NEG_INF __int_as_float(0xff800000)  // -inf (NVRTC has no math.h for INFINITY)

// FlashAttention-4's lazy rescaling (flashviz/core/fa4.py): the running max m_i is kept
// unless the tile's max m_max exceeds it by more than RESCALE_MARGIN, the threshold in the
// scores' natural-log units (float32(threshold * ln 2), a #define from launch_params; 0 is
// FA2's rule: a max that rises is taken).
__device__ inline float lazy_max(float m_i, float m_max) {
    return m_max > m_i + RESCALE_MARGIN ? m_max : m_i;
}

// The K/V tiles a Q block visits: the block mask's partial tiles (kv_indices, the mask
// applied entry by entry) and full tiles (full_kv_indices, the mask never evaluated), each
// list in increasing j. Empty tiles are in neither: they are never visited.
struct TileLists {
    const int* partial;
    const int* full;
    int n_partial, n_full;
};

// The lists of this thread block's Q block (blockIdx.x) for query head `head` = b * heads + h
// (blockIdx.y). The lists are (B, H, Q blocks[, K/V blocks]); a block mask that is the same
// for all batches (mask_batches = 1) or heads (mask_heads = 1) has one row for them
// (TiledProblem.mask_index).
__device__ inline TileLists block_tiles(const int* kv_num_blocks, const int* kv_indices,
                                        const int* full_kv_num_blocks, const int* full_kv_indices,
                                        int head, int heads, int mask_batches, int mask_heads,
                                        int n_q, int n_k) {
    const int row = (mask_batches > 1 ? head / heads : 0) * mask_heads +
                    (mask_heads > 1 ? head % heads : 0);
    const int q_blocks = (n_q + BLOCK_Q - 1) / BLOCK_Q, kv_blocks = (n_k + BLOCK_KV - 1) / BLOCK_KV;
    const int at = row * q_blocks + blockIdx.x;  // (b, h, i) of (B, H, Q blocks)
    const long long listed = (long long)at * kv_blocks;  // (b, h, i, 0) of (..., K/V blocks)
    return {kv_indices + listed, full_kv_indices + listed, kv_num_blocks[at],
            full_kv_num_blocks[at]};
}

// Whether the next tile of the walk (p partial and f full tiles taken so far), in
// increasing j as TiledProblem.schedule visits them, is full[f] (else partial[p]).
__device__ inline bool next_is_full(const TileLists& tiles, int p, int f) {
    return p == tiles.n_partial || (f < tiles.n_full && tiles.full[f] < tiles.partial[p]);
}

// A built-in mask (flashviz.core.masks.MaskSpec): its kind (MASK_*) with parameters a, b, c,
// each position's document (MASK_DOCUMENT: doc_ids[x], from the starts, as FlexAttention's
// document_id), AND (causal) col <= row + causal_offset.
struct ElementMask {
    int kind, a, b, c;
    const int* doc_ids;
    int causal, causal_offset;
};

// Row `row` sees key `col` by the mask (as the mask_mod of flashviz.core.masks says).
__device__ inline bool mask_visible(const ElementMask& mask, int row, int col) {
    if (mask.causal && col > row + mask.causal_offset) return false;
    const int dist = row > col ? row - col : col - row;
    switch (mask.kind) {
        case MASK_WINDOW: return dist <= mask.a;
        case MASK_PREFIX_LM: return col < mask.a || col <= row;
        case MASK_DOCUMENT: return mask.doc_ids[row] == mask.doc_ids[col];
        case MASK_CHUNKED: return row / mask.a == col / mask.a;
        case MASK_GLOBAL:
            return row < mask.a || col < mask.a || (dist <= mask.b && (!mask.c || col <= row));
        default: return true;  // MASK_ALL
    }
}

// Row `row` sees key `col` of a tile: the key exists and, on a partial tile, the mask lets
// the row see it (a full tile's keys are all visible: the mask is not evaluated).
__device__ inline bool visible(const ElementMask& mask, bool full, int row, int col, int n_k) {
    return col < n_k && (full || mask_visible(mask, row, col));
}
