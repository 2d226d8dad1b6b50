"""POST /v1/chat/completions and /v1/completions: requests into the engine, events back out as one JSON body or
as server-sent events (`data: {...}` chunks, then `data: [DONE]`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from .engine import GenerationRequest
from .protocol import APIError, TextStream, chat_messages, prompts, sampling

_POLL_SECONDS = 0.5  # how often a waiting non-streamed request checks that its client is still there


class Job:
    """The n sequences of one HTTP request, their events gathered on the event loop."""

    def __init__(self, state, prompt_ids: list, settings: dict, index_base: int = 0):
        self.state, self.settings, self.base = state, settings, index_base
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue = asyncio.Queue()
        eos = state.served.model.generation_config.eos_token_id
        eos_ids = frozenset(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        self.requests = []
        for i in range(settings["n"]):
            seed = settings["seed"] + i if settings["seed"] is not None else None
            self.requests.append(GenerationRequest(
                prompt_ids=prompt_ids, max_tokens=settings["max_tokens"], emit=self._emitter(index_base + i),
                temperature=settings["temperature"], top_p=settings["top_p"], seed=seed,
                top_logprobs=settings["top_logprobs"], eos_ids=eos_ids))

    def _emitter(self, index: int):
        def emit(kind, payload):
            try:
                self.loop.call_soon_threadsafe(self.events.put_nowait, (index, kind, payload))
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                pass
        return emit

    def cancel(self):
        for request in self.requests:
            request.cancel()
        self.state.engine.wake()


def _limit_tokens(state, prompt_len: int, settings: dict, param: str = "prompt"):
    """Check the prompt and max_tokens against the context; default max_tokens to what is left."""
    limit = state.engine.max_len
    wanted = settings["max_tokens"]
    if prompt_len >= limit or (wanted is not None and prompt_len + wanted > limit):
        asked = prompt_len + (wanted or 0)
        raise APIError(400, f"This model's maximum context length is {limit} tokens. However, you requested {asked} "
                            f"tokens ({prompt_len} in the prompt, {wanted or 0} for the completion). Please reduce "
                            f"the length of the prompt or of max_tokens.", param=param, code="context_length_exceeded")
    if wanted is None:
        settings["max_tokens"] = limit - prompt_len


def _chat_prompt(state, body: dict) -> list:
    tokenizer = state.served.tokenizer
    messages = chat_messages(body)
    if not getattr(tokenizer, "chat_template", None):
        raise APIError(400, "This model's tokenizer has no chat template; use /v1/completions with a prompt.")
    try:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    except Exception as err:  # noqa: BLE001 - a template that rejects the conversation is the client's error
        raise APIError(400, f"The chat template rejected the messages: {err}", param="messages") from None
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


async def chat_completions(state, http_request, body: dict):
    settings = sampling(body, chat=True)
    prompt_ids = _chat_prompt(state, body)
    _limit_tokens(state, len(prompt_ids), settings, "messages")
    job = Job(state, prompt_ids, settings)
    meta = dict(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=state.served.name)
    state.engine.submit(job.requests)
    if settings["stream"]:
        return _sse(_chat_chunks(state, job, meta, len(prompt_ids)), job)
    outcome = await _collect(state, job, http_request)
    choices = [{"index": i, "message": {"role": "assistant", "content": text},
                "logprobs": {"content": [_chat_logprob(state, e) for e in entries]} if entries is not None else None,
                "finish_reason": reason} for i, (text, reason, entries, _) in enumerate(outcome)]
    return dict(meta, object="chat.completion", choices=choices, usage=_usage(len(prompt_ids), outcome))


async def completions(state, http_request, body: dict):
    settings = sampling(body, chat=False)
    tokenizer = state.served.tokenizer
    items = prompts(body)
    encoded = [list(p) if isinstance(p, list) else tokenizer(p)["input_ids"] for p in items]
    if settings["max_tokens"] is None:
        settings["max_tokens"] = 16  # OpenAI's default for text completions
    vocab = state.served.model.config.vocab_size
    for ids in encoded:
        if not ids:
            raise APIError(400, "A prompt must contain at least one token.", param="prompt")
        if min(ids) < 0 or max(ids) >= vocab:
            raise APIError(400, f"Token ids must lie in 0..{vocab - 1} (the model's vocabulary).", param="prompt")
        _limit_tokens(state, len(ids), settings)
    jobs = [Job(state, ids, settings, index_base=i * settings["n"]) for i, ids in enumerate(encoded)]
    meta = dict(id=f"cmpl-{uuid.uuid4().hex}", created=int(time.time()), model=state.served.name)
    state.engine.submit([r for job in jobs for r in job.requests])
    echoes = [tokenizer.decode(ids) if settings["echo"] else "" for ids in encoded]
    if settings["stream"]:
        if len(jobs) > 1:
            for job in jobs:
                job.cancel()
            raise APIError(400, "Streaming takes one prompt per request.", param="prompt")
        return _sse(_completion_chunks(state, jobs[0], meta, len(encoded[0]), echoes[0]), jobs[0])
    choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0}
    for job, ids, echo in zip(jobs, encoded, echoes):
        outcome = await _collect(state, job, http_request)
        for text, reason, entries, count in outcome:
            choices.append({"index": len(choices), "text": echo + text, "finish_reason": reason,
                            "logprobs": _completion_logprobs(state, entries) if entries is not None else None})
        usage["prompt_tokens"] += len(ids)
        usage["completion_tokens"] += sum(o[3] for o in outcome)
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return dict(meta, object="text_completion", choices=choices, usage=usage)


def _usage(prompt_len: int, outcome) -> dict:
    generated = sum(o[3] for o in outcome)
    return {"prompt_tokens": prompt_len, "completion_tokens": generated, "total_tokens": prompt_len + generated}


def _finish_reason(reason: str) -> str:
    if reason.startswith("error"):
        raise APIError(500, f"Generation failed: {reason[7:]}")
    return reason


async def _events(state, job, http_request=None):
    """(index, kind, payload) events of a job until each of its sequences is done; the job is cancelled when the
    consumer stops early (a client gone, an error)."""
    pending = len(job.requests)
    try:
        while pending:
            try:
                event = await asyncio.wait_for(job.events.get(), _POLL_SECONDS)
            except asyncio.TimeoutError:
                if http_request is not None and await http_request.is_disconnected():
                    return
                continue
            if event[1] == "done":
                pending -= 1
            yield event
    finally:
        if pending:
            job.cancel()


async def _collect(state, job, http_request):
    """[(text, finish_reason, logprob entries or None, tokens generated)] per sequence of a non-streamed job."""
    n = len(job.requests)
    base = job.base
    streams = [TextStream(state.served.tokenizer, job.settings["stop"]) for _ in range(n)]
    entries = [[] if job.settings["top_logprobs"] is not None else None for _ in range(n)]
    reasons, counts = [None] * n, [0] * n
    async for index, kind, payload in _events(state, job, http_request):
        i = index - base
        if kind == "token":
            counts[i] += 1
            _take_token(streams[i], entries[i], payload, job.requests[i])
        else:
            reasons[i] = _finish_reason("stop" if streams[i].stopped else payload)
    if None in reasons:
        raise APIError(499, "The client closed the request.")
    return [(s.text, r, e, c) for s, r, e, c in zip(streams, reasons, entries, counts)]


def _take_token(stream: TextStream, entries, payload, request) -> str:
    """Feed one token event to its text stream; a stop string cancels the sequence in the engine."""
    token, entry = payload
    was_stopped = stream.stopped
    delta = stream.push(token)
    if entries is not None and not was_stopped and entry is not None:
        entries.append((token, entry))
    if stream.stopped and not was_stopped:
        request.cancel()
    return delta


def _token_text(state, token: int) -> str:
    return state.served.tokenizer.decode([token])


def _chat_logprob(state, item) -> dict:
    token, (logprob, top) = item
    text = _token_text(state, token)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8")),
            "top_logprobs": [{"token": _token_text(state, t), "logprob": lp,
                              "bytes": list(_token_text(state, t).encode("utf-8"))} for t, lp in top]}


def _completion_logprobs(state, entries) -> dict:
    tokens = [_token_text(state, t) for t, _ in entries]
    offsets, at = [], 0
    for text in tokens:
        offsets.append(at)
        at += len(text)
    return {"tokens": tokens, "token_logprobs": [e[0] for _, e in entries],
            "top_logprobs": [{_token_text(state, t): lp for t, lp in e[1]} for _, e in entries],
            "text_offset": offsets}


# ---------------------------------------------------------------------- streaming
async def _chat_chunks(state, job, meta, prompt_len):
    n = len(job.requests)
    streams = [TextStream(state.served.tokenizer, job.settings["stop"]) for _ in range(n)]
    counts = [0] * n
    base = dict(meta, object="chat.completion.chunk")
    for i in range(n):
        yield dict(base, choices=[{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                   "finish_reason": None}])
    async for i, kind, payload in _events(state, job):
        if kind == "token":
            counts[i] += 1
            entries = [] if job.settings["top_logprobs"] is not None else None
            delta = _take_token(streams[i], entries, payload, job.requests[i])
            logprobs = {"content": [_chat_logprob(state, e) for e in entries]} if entries else None
            if delta or logprobs:
                yield dict(base, choices=[{"index": i, "delta": {"content": delta}, "logprobs": logprobs,
                                           "finish_reason": None}])
            continue
        reason = "stop" if streams[i].stopped else _finish_reason(payload)
        rest = streams[i].flush()
        yield dict(base, choices=[{"index": i, "delta": {"content": rest} if rest else {}, "logprobs": None,
                                   "finish_reason": reason}])
    if job.settings["include_usage"]:
        yield dict(base, choices=[], usage={"prompt_tokens": prompt_len, "completion_tokens": sum(counts),
                                            "total_tokens": prompt_len + sum(counts)})


async def _completion_chunks(state, job, meta, prompt_len, echo):
    n = len(job.requests)
    streams = [TextStream(state.served.tokenizer, job.settings["stop"]) for _ in range(n)]
    counts = [0] * n
    base = dict(meta, object="text_completion")
    if echo:
        for i in range(n):
            yield dict(base, choices=[{"index": i, "text": echo, "logprobs": None, "finish_reason": None}])
    async for i, kind, payload in _events(state, job):
        if kind == "token":
            counts[i] += 1
            entries = [] if job.settings["top_logprobs"] is not None else None
            delta = _take_token(streams[i], entries, payload, job.requests[i])
            if delta or entries:
                yield dict(base, choices=[{"index": i, "text": delta, "finish_reason": None,
                                           "logprobs": _completion_logprobs(state, entries) if entries else None}])
            continue
        reason = "stop" if streams[i].stopped else _finish_reason(payload)
        yield dict(base, choices=[{"index": i, "text": streams[i].flush(), "logprobs": None,
                                   "finish_reason": reason}])
    if job.settings["include_usage"]:
        yield dict(base, choices=[], usage={"prompt_tokens": prompt_len, "completion_tokens": sum(counts),
                                            "total_tokens": prompt_len + sum(counts)})


def _sse(chunks, job):
    """A StreamingResponse of server-sent events; the job is cancelled when the client goes away."""
    from starlette.responses import StreamingResponse

    async def body():
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        except APIError as err:
            yield f"data: {json.dumps(err.body())}\n\n"
        finally:
            job.cancel()
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
