"""What several pages draw or keep, one idea a module: page state kept across pages and in
the URL (``page_state``), the page's frame (``page_shell``), the shared problem's fields and
sidebar (``problem``) and its errors (``problem_errors``), step controls and Play
(``step_controls``, ``play``), user text shown literally (``safe_text``), themed charts
(``charts``), the page style and the Light / Dark switch (``page_style``, ``theme_switch``;
the switch's HTML, CSS and JavaScript in ``frontend/``).
"""
