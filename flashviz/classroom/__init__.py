"""Live rooms: a class follows the lecturer's page, problem and step, and answers questions.

``room_store()`` is the store of this process: rooms in memory (one process, nothing to
install), or in Redis when ``FLASHVIZ_ROOMS_URL`` is set (several processes serve one room).
Plain Python: no Streamlit (the app draws rooms; ``flashviz.app`` imports this layer).
"""
