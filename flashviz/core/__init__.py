"""The algorithm: the inner step, the tiled forward, the reference, masks, checks, precisions,
the trace, the cost model. Imports nothing else of flashviz.
"""
