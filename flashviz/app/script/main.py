"""The app's script, run for every session (``app.py`` serves it): page set-up and navigation
only. Pages live in ``flashviz/app/pages``; figures and numbers in ``flashviz`` (which never
imports streamlit).
"""

import streamlit as st

from flashviz.app.streamlit_version import stop_if_too_old

st.set_page_config(page_title="flashviz: FlashAttention-2 stepper", layout="wide")
stop_if_too_old()  # before the pages import what an older Streamlit lacks

from flashviz.app.navigation import pages  # noqa: E402
from flashviz.app.widgets.class_room import class_panel, publish_view  # noqa: E402
from flashviz.app.widgets.page_style import page_style  # noqa: E402
from flashviz.app.widgets.theme_switch import theme_switch  # noqa: E402

every_page = pages()
page = st.navigation(every_page)
page_style()  # every page: captions of AA contrast
with st.sidebar:
    theme_switch()  # every page: Light / Dark, the charts follow
class_panel({p.url_path: p for p in every_page}, page)  # a class follows its lecturer
page.run()
publish_view()  # the lecturer's view, to the class
