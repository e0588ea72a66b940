"""flashviz: step through FlashAttention-2 tile by tile (placeholder page)."""

import streamlit as st

st.set_page_config(page_title="flashviz", layout="wide")
st.title("flashviz: FlashAttention-2, tile by tile")
st.info("The interactive stepper is being built. The numerical core lives in `flashviz/`.")
