"""OpenAI-compatible HTTP server with continuous batching and batch-invariant greedy decoding, and its web page.

    leanformers serve [MODEL] [--port 8000] [--max-batch 8]

`serve(...)` runs it from Python; `load`, `build_state` and `create_app` build the ASGI app without running it.
Needs the `serve` extra (starlette, uvicorn).
"""

from __future__ import annotations

__all__ = ["serve", "load", "build_state", "create_app"]


def __getattr__(name):
    if name == "serve":
        from .server import serve

        return serve
    if name == "load":
        from .served import load

        return load
    if name in ("build_state", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'leanformers.serving' has no attribute {name!r}")
