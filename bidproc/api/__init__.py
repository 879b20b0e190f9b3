"""The HTTP API (ASGI, FastAPI): a thin layer over the deposit desk and the pipeline.

Flow: [api] -> desk -> pipeline -> intake -> signature -> encryption -> archive (requests in; the desk does the work).
"""
