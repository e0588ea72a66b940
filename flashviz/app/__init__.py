"""The Streamlit layer of flashviz: pages and widgets only; the work lives in ``flashviz``."""
