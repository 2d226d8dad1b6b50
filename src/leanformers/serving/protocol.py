"""The OpenAI wire format: request validation (types and ranges, 400 on a wrong one; unknown fields ignored),
error bodies, and the incremental text of a generated sequence (stop strings, partial UTF-8 held back)."""

from __future__ import annotations

import json

MAX_N = 16                 # choices per request
MAX_STOP = 4               # stop strings per request, as OpenAI
MAX_TOP_LOGPROBS = 20
MAX_BODY_BYTES = 8 << 20


class APIError(Exception):
    """An error answered in OpenAI's JSON shape with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.kind = kind or {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                             429: "rate_limit_error", 503: "service_unavailable"}.get(status, "server_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def parse_body(raw: bytes) -> dict:
    """The JSON object of a request body; APIError(400) for oversized, non-UTF-8, malformed or non-object bodies."""
    if len(raw) > MAX_BODY_BYTES:
        raise APIError(400, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise APIError(400, f"The request body is not valid UTF-8 (byte {err.start}).") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise APIError(400, f"The request body is not valid JSON: {err.msg} at line {err.lineno} column "
                            f"{err.colno}.") from None
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return body


# ---------------------------------------------------------------------- field checks
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
               dict: "an object"}


def field(body: dict, name: str, kind, default=None, low=None, high=None, required: bool = False):
    """body[name] checked against `kind` (bool, int, float, str, list, dict) and the range [low, high]."""
    value = body.get(name)
    if value is None:
        if required:
            raise APIError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
        return default
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise APIError(400, f"Invalid type for '{name}': expected {_TYPE_NAMES[kind]}, but got "
                            f"{type(value).__name__} {json.dumps(value)[:60]}.", param=name, code="invalid_type")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise APIError(400, f"Invalid value for '{name}': {value} is not {bounds}.", param=name,
                       code="invalid_value")
    return value


def stop_strings(body: dict) -> list:
    stop = body.get("stop")
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise APIError(400, "Invalid type for 'stop': expected a string or an array of strings.", param="stop",
                       code="invalid_type")
    if len(stops) > MAX_STOP:
        raise APIError(400, f"Invalid value for 'stop': at most {MAX_STOP} stop strings.", param="stop")
    return [s for s in stops if s]


def sampling(body: dict, chat: bool) -> dict:
    """The generation settings common to chat and text completions."""
    settings = dict(
        temperature=field(body, "temperature", float, 1.0, 0.0, 2.0),
        top_p=field(body, "top_p", float, 1.0, 0.0, 1.0),
        seed=field(body, "seed", int),
        n=field(body, "n", int, 1, 1, MAX_N),
        stream=field(body, "stream", bool, False),
        stop=stop_strings(body),
        max_tokens=field(body, "max_completion_tokens", int, None, 1) if chat else None,
    )
    if settings["max_tokens"] is None:
        settings["max_tokens"] = field(body, "max_tokens", int, None, 1)
    options = field(body, "stream_options", dict, {})
    settings["include_usage"] = field(options, "include_usage", bool, False)
    for name in ("presence_penalty", "frequency_penalty"):
        if field(body, name, float, 0.0, -2.0, 2.0):
            raise APIError(400, f"'{name}' is not supported by this server; leave it at 0.", param=name)
    if field(body, "logit_bias", dict):
        raise APIError(400, "'logit_bias' is not supported by this server; leave it out.", param="logit_bias")
    if settings["top_p"] == 0.0:
        settings["temperature"] = 0.0  # only the likeliest token is left
    if chat:
        wants = field(body, "logprobs", bool, False)
        top = field(body, "top_logprobs", int, None, 0, MAX_TOP_LOGPROBS)
        if top is not None and not wants:
            raise APIError(400, "'top_logprobs' needs 'logprobs': true.", param="top_logprobs")
        settings["top_logprobs"] = (top or 0) if wants else None
    else:
        settings["top_logprobs"] = field(body, "logprobs", int, None, 0, 5)
        settings["echo"] = field(body, "echo", bool, False)
        if field(body, "suffix", str):
            raise APIError(400, "'suffix' (insertion) is not supported by this server; leave it out.",
                           param="suffix")
    return settings


def chat_messages(body: dict) -> list:
    """The messages of a chat request as {"role", "content"} with string content."""
    messages = field(body, "messages", list, required=True)
    if not messages:
        raise APIError(400, "'messages' must contain at least one message.", param="messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise APIError(400, f"Invalid type for 'messages[{i}]': expected an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise APIError(400, f"Invalid value for 'messages[{i}].role': {json.dumps(role)}; expected system, "
                                f"developer, user, assistant or tool.", param=f"messages[{i}].role")
        out.append({"role": "system" if role == "developer" else role, "content": _content(message, i)})
    return out


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    if content is None and message.get("role") == "assistant":
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = []
        for part in content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise APIError(400, f"'messages[{i}].content': only text parts are supported, got "
                                    f"{json.dumps(part.get('type'))}.", param=f"messages[{i}].content")
            texts.append(part["text"])
        return "".join(texts)
    raise APIError(400, f"Invalid type for 'messages[{i}].content': expected a string or an array of text parts.",
                   param=f"messages[{i}].content", code="invalid_type")


def prompts(body: dict, name: str = "prompt") -> list:
    """The prompts of a completions (or embeddings) request: a list of str or of token-id lists."""
    value = body.get(name)
    if value is None:
        raise APIError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return [value]
    if isinstance(value, list) and value and all(isinstance(p, str) for p in value):
        return list(value)
    if isinstance(value, list) and value and all(
            isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool) for t in p)
            for p in value):
        return list(value)
    raise APIError(400, f"Invalid type for '{name}': expected a non-empty string, array of strings, array of token "
                        f"ids or array of token-id arrays.", param=name, code="invalid_type")


# ---------------------------------------------------------------------- generated text
class TextStream:
    """The text of a growing token sequence, released in pieces that never split a character or a stop string."""

    def __init__(self, tokenizer, stops: list):
        self.tokenizer, self.stops = tokenizer, stops
        self.ids: list = []
        self.sent = 0
        self.text = ""
        self.stopped = False

    def push(self, token: int) -> str:
        """Add a token; returns the new text that is safe to release (maybe empty)."""
        if self.stopped:
            return ""
        self.ids.append(token)
        full = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        for stop in self.stops:
            at = full.find(stop, max(0, self.sent - len(stop)))
            if at >= 0:
                self.stopped, full = True, full[:at]
        self.text = full
        end = len(full) if self.stopped else len(full.rstrip("\ufffd"))
        if not self.stopped:
            end -= max((k for s in self.stops for k in range(1, len(s)) if full[:end].endswith(s[:k])), default=0)
        delta, self.sent = full[self.sent:max(end, self.sent)], max(end, self.sent)
        return delta

    def flush(self) -> str:
        """The text held back so far (at the end of the sequence)."""
        delta, self.sent = self.text[self.sent:], len(self.text)
        return delta
