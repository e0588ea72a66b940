// What both kernels must agree on with flashviz/core/masking.py: -inf, the K/V tiles a Q
// block visits, and which keys a row sees. Included by flash_attention.cu and
// flash_attention_tc.cu; flashviz/gpu/launch_params.py (kernel_source) writes this text in
// place of the #include, so NVRTC, CuPy and the CPU emulation compile one text.
#define NEG_INF __int_as_float(0xff800000)  // -inf (NVRTC has no math.h for INFINITY)

// K/V tiles (from j = 0) the Q block of rows [q_start, q_start + block_q) visits: all of
// them, or (causal) up to the one holding the last key its bottom row sees; tiles entirely
// above the diagonal are skipped (masking.kv_blocks_for).
__device__ inline int kv_blocks_for(int q_start, int block_q, int n_q, int block_kv, int n_k,
                                    int causal, int causal_offset) {
    const int total = (n_k + block_kv - 1) / block_kv;
    if (!causal) return total;
    const int last_col = min(q_start + block_q, n_q) - 1 + causal_offset;
    return last_col < 0 ? 0 : min(total, last_col / block_kv + 1);
}

// Row `row` sees key `col`: the key exists and (causal) lies at most causal_offset keys right
// of the row's diagonal (masking.visible).
__device__ inline bool visible(int row, int col, int n_k, int causal, int causal_offset) {
    return col < n_k && (!causal || col <= row + causal_offset);
}
