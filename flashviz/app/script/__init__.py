"""The script Streamlit runs for each session (``app.py`` serves it), in a folder of its own:
a ``pages/`` folder beside a main script would become pages of its own."""
