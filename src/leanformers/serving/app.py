"""The ASGI application (Starlette): the OpenAI routes, /health, /metrics, the pipeline routes and the web page."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from pathlib import Path

from .completions import chat_completions, completions
from .engine import DEFAULT_CHUNK, Engine, QueueFullError, ShuttingDownError
from .metrics import Metrics
from .protocol import APIError, parse_body
from .tasks import TaskRunner

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_LEN = 2048  # tokens per slot unless asked: the key/value memory is slots x this, allocated once
_PAGES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


@dataclass
class ServerState:
    served: object
    engine: Engine | None
    tasks: TaskRunner
    metrics: Metrics
    api_key: str | None = None
    draining: bool = False
    started: float = 0.0


def build_state(served, max_batch: int = 8, max_queue: int = 64, max_len: int | None = None,
                invariant: bool = False, api_key: str | None = None,
                prefill_chunk: int = DEFAULT_CHUNK, compile: bool = False, prefix_cache: int = 0) -> ServerState:
    """The server's state around a loaded model (see served.load): the engine for generative models. With
    `compile`, the engine's decoding step is compiled here, before the server takes requests."""
    metrics = Metrics()
    engine = None
    if served.generative:
        limit = min(max_len or DEFAULT_MAX_LEN, served.max_context)
        engine = Engine(served.model, max_batch=max_batch, max_queue=max_queue, max_len=limit, invariant=invariant,
                        metrics=Metrics(), prefill_chunk=prefill_chunk, compile=compile, prefix_cache=prefix_cache,
                        release_weights=compile)  # the server's own model: only the compiled step runs it
        if compile:
            engine.warm_up()
        engine.metrics = metrics  # counts from here: the warm-up request is not one of the server's
    elif compile:
        raise ValueError("compile applies to generative models only; serve this model without --compile.")
    return ServerState(served=served, engine=engine, tasks=TaskRunner(served), metrics=metrics, api_key=api_key,
                       started=time.time())


def create_app(state: ServerState, cors_origin: str | None = None):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    routes = [Route("/", _page, methods=["GET"]), Route("/static/{name}", _page, methods=["GET"]),
              Route("/health", _health, methods=["GET"]), Route("/metrics", _metrics, methods=["GET"]),
              Route("/v1/models", _api(_models, "models"), methods=["GET"]),
              Route("/v1/models/{model:path}", _api(_model, "models"), methods=["GET"]),
              Route("/v1/info", _api(_info, "info"), methods=["GET"]),
              Route("/v1/chat/completions", _api(_generate(chat_completions), "chat"), methods=["POST"]),
              Route("/v1/completions", _api(_generate(completions), "completions"), methods=["POST"]),
              Route("/v1/embeddings", _api(_embeddings, "embeddings"), methods=["POST"]),
              Route("/v1/pipeline/{task}", _api(_pipeline, "pipeline"), methods=["POST"])]
    middleware = []
    if cors_origin:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=[cors_origin], allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.server = state
    return app


# ---------------------------------------------------------------------- plumbing
def _json(body, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status)


def _api(handler, endpoint: str):
    """Wrap a /v1 handler: API key, OpenAI error bodies, request metrics."""
    async def route(request):
        state = request.app.state.server
        try:
            _check_key(state, request)
            response = await handler(state, request)
            if isinstance(response, dict):
                response = _json(response)
        except APIError as err:
            response = _json(err.body(), err.status)
        except QueueFullError as err:
            response = _json(APIError(429, str(err), code="queue_full").body(), 429)
        except ShuttingDownError as err:
            response = _json(APIError(503, str(err), code="shutting_down").body(), 503)
        state.metrics.count_request(endpoint, response.status_code)
        return response
    return route


def _check_key(state, request):
    if not state.api_key:
        return
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(given.encode(), state.api_key.encode()):
        raise APIError(401, "Incorrect API key provided. Pass it as 'Authorization: Bearer KEY'.",
                       code="invalid_api_key")


async def _body(state, request) -> dict:
    if state.draining:
        raise ShuttingDownError("The server is shutting down and takes no new requests.")
    body = parse_body(await request.body())
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise APIError(400, "Invalid type for 'model': expected a string.", param="model", code="invalid_type")
    if model and model not in _names(state):
        raise APIError(404, f"The model `{model}` does not exist; this server serves `{state.served.name}`.",
                       param="model", code="model_not_found")
    return body


def _names(state) -> set:
    served = state.served
    return {served.name, served.source, Path(served.source).name, served.gguf_file or served.name}


# ---------------------------------------------------------------------- handlers
def _generate(handler):
    async def route(state, request):
        body = await _body(state, request)
        if state.engine is None:
            raise APIError(400, f"The model {state.served.name} is not generative; it serves "
                                f"{', '.join(state.served.tasks)}.", param="model")
        return await handler(state, request, body)
    return route


async def _embeddings(state, request):
    from starlette.concurrency import run_in_threadpool

    body = await _body(state, request)
    return await run_in_threadpool(state.tasks.embed, body)


async def _pipeline(state, request):
    from starlette.concurrency import run_in_threadpool

    body = await _body(state, request)
    return await run_in_threadpool(state.tasks.pipeline, request.path_params["task"], body)


def _model_card(state) -> dict:
    return {"id": state.served.name, "object": "model", "created": int(state.started), "owned_by": "leanformers"}


async def _models(state, request):
    return {"object": "list", "data": [_model_card(state)]}


async def _model(state, request):
    if request.path_params["model"] not in _names(state):
        raise APIError(404, f"The model `{request.path_params['model']}` does not exist.", code="model_not_found")
    return _model_card(state)


async def _info(state, request):
    engine = state.engine
    return {"model": state.served.name, "tasks": state.served.tasks, "generative": state.served.generative,
            "max_context": engine.max_len if engine else None, "max_batch": engine.max_batch if engine else None,
            "batch_invariant": engine.invariant if engine else None}


async def _health(request):
    state = request.app.state.server
    status = 503 if state.draining else 200
    body = {"status": "shutting_down" if state.draining else "ok", "model": state.served.name}
    if state.engine is not None:
        body.update(running=len(state.engine.running), waiting=len(state.engine.waiting),
                    kv_cache_bytes=state.engine.kv_bytes)
    return _json(body, status)


async def _metrics(request):
    from starlette.responses import PlainTextResponse

    state = request.app.state.server
    if state.engine is not None:
        state.metrics.running = len(state.engine.running)
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")


async def _page(request):
    from starlette.responses import Response

    name = request.path_params.get("name", "index.html")
    if name not in _PAGES:
        return _json(APIError(404, f"No such file: {name}").body(), 404)
    return Response((STATIC / name).read_bytes(), media_type=_PAGES[name])
