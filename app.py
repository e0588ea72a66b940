"""flashviz: step through FlashAttention-2 tile by tile. Run: ``streamlit run app.py``.

Thin on purpose: page set-up and navigation only. Pages live in ``flashviz_app/pages``;
figures and numbers in ``flashviz`` (which never imports streamlit).
"""

import streamlit as st

from flashviz_app.navigation import pages

st.set_page_config(page_title="flashviz: FlashAttention-2 stepper", layout="wide")
st.navigation(pages()).run()
