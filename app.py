"""flashviz: step through FlashAttention-2 tile by tile. Run: ``streamlit run app.py``.

Thin on purpose: the server. Streamlit serves the app's script, ``flashviz/app/script/main.py``
(page set-up and navigation; pages in ``flashviz/app/pages``), plus the route a class's
followers wait on (``flashviz/app/room_routes.py``).
"""

import streamlit as st

from flashviz.app.streamlit_version import stop_if_too_old

stop_if_too_old()  # a Streamlit without st.App runs this file as the page: it says what to do

from flashviz.app.room_routes import ROUTES  # noqa: E402

app = st.App("flashviz/app/script/main.py", routes=ROUTES)
