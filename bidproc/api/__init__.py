"""The HTTP API (ASGI, FastAPI): a thin layer over the deposit desk and the pipeline."""
