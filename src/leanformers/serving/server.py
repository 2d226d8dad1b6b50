"""`leanformers serve`: load the model, build the app, run it under uvicorn until SIGINT/SIGTERM.

On the first signal the server stops taking requests (new ones get 503), lets the running ones finish for up to
`graceful_seconds`, then cancels what is left and stops the scheduler; nothing waits without a bound.
"""

from __future__ import annotations

import logging

from .. import packed_weights
from .app import build_state, create_app
from .served import load

log = logging.getLogger("leanformers.serve")


def serve(model: str | None = None, gguf_file: str | None = None, task: str | None = None,
          host: str = "127.0.0.1", port: int = 8000, max_batch: int = 8, max_queue: int = 64,
          max_len: int | None = None, api_key: str | None = None, cors_origin: str | None = None,
          device: str = "cpu", dtype: str | None = None, batch_invariant: bool = False,
          graceful_seconds: float = 30.0, log_level: str = "info", prefill_chunk: int = 128,
          compile: bool = False, prefix_cache: int = 0) -> int:
    """Serve `model` (default: the embedded SmolLM2-135M-Instruct GGUF) over HTTP; returns when stopped."""
    import uvicorn

    # a server's memory is its model and key/value budget: oneDNN's products (where they are taken) pack per call
    packed_weights.KEEP_PACKED = False
    served = load(model, gguf_file=gguf_file, task=task, device=device, dtype=dtype)
    state = build_state(served, max_batch=max_batch, max_queue=max_queue, max_len=max_len,
                        invariant=batch_invariant, api_key=api_key, prefill_chunk=prefill_chunk, compile=compile,
                        prefix_cache=prefix_cache)
    app = create_app(state, cors_origin=cors_origin)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                            timeout_graceful_shutdown=graceful_seconds, timeout_keep_alive=5)
    server = _server(config, state)
    print(f"leanformers serve: {served.name} ({', '.join(served.tasks)}) on http://{host}:{port}/"
          + (f" - {max_batch} slots x {state.engine.max_len} tokens" if state.engine else ""), flush=True)
    try:
        server.run()
    finally:
        if state.engine is not None:
            state.engine.shutdown(timeout=10.0)
    return 0


def _server(config, state):
    """A uvicorn.Server whose first exit signal also puts the app into draining mode (503 for new requests)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            state.draining = True
            if state.engine is not None:
                state.engine.accepting = False
            super().handle_exit(sig, frame)
            self._captured_signals.clear()  # a drained server exits normally (status 0), not by the signal again

    return Server(config)
