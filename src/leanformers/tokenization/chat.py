"""Chat templates: a conversation (a list of {"role", "content"} messages) rendered to the prompt text of a model by
the Jinja2 template of its tokenizer, then optionally tokenized (`apply_chat_template`).

Templates come with checkpoints, so they are untrusted code: they run in Jinja2's immutable sandbox, and everything
they see (messages, tools, documents, extra variables) is rebuilt from plain JSON types first. The environment is
the one chat templates are written for: `trim_blocks` and `lstrip_blocks`, the `loopcontrols` extension, a `tojson`
filter that keeps non-ASCII text and takes `indent`/`separators`/`sort_keys`, and the globals `raise_exception`,
`strftime_now`, `dict` and `namespace`. `{% generation %}...{% endgeneration %}` marks the assistant's text for
`return_assistant_tokens_mask`.

A template also runs within limits (module constants, read at each render): TEMPLATE_TIME_LIMIT seconds, and no
string, list or output larger than TEMPLATE_SIZE_LIMIT characters plus eight times the size of its inputs. Every
failure (syntax, sandbox, limits, the template's own raise_exception) is a ChatTemplateError that is also the
matching jinja2 exception.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache

import numpy as np

from ..errors import ChatTemplateError, LeanformersError, TokenizerError

TEMPLATE_TIME_LIMIT = 10.0        # seconds one render may take
TEMPLATE_SIZE_LIMIT = 10_000_000  # characters (or items) one value or the output may hold, plus 8x the inputs' size

# Noncharacters (never in interchange text) that bracket {% generation %} output while its spans are located.
_OPEN, _CLOSE = "\ufdd0", "\ufdd1"
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "
_REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")


# ---------------------------------------------------------------------------------------------- the environment
@lru_cache(maxsize=64)
def compile_template(source: str):
    """The compiled template for a chat-template source string (cached: a tokenizer renders the same one often)."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols

    class GenerationBlock(Extension):
        """`{% generation %}...{% endgeneration %}`: renders its body between two markers located afterwards."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_bracket"), [], [], body).set_lineno(lineno)

        def _bracket(self, caller):
            return _OPEN + caller() + _CLOSE

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = _limited_environment_class()(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.filters = {name: _limited_filter(function) for name, function in env.filters.items()}
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt),
                       dict=_DictFactory(), namespace=_namespace_class(jinja2))
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateError as err:
        raise chat_template_error(err, "cannot be compiled") from None
    except (RecursionError, MemoryError, SyntaxError, ValueError, TypeError, OverflowError) as err:
        # what the compiler raises on templates it does not expect (`{% break %}` outside a loop, deep nesting)
        raise chat_template_error(jinja2.exceptions.TemplateSyntaxError(f"{type(err).__name__}: {err}", 1),
                                  "cannot be compiled") from None


# ---------------------------------------------------------------------------------------------- limits
_budget = threading.local()  # deadline and size limit of the render running in this thread


def _check_time():
    deadline = getattr(_budget, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        from jinja2.exceptions import SecurityError

        raise SecurityError(f"the template ran longer than TEMPLATE_TIME_LIMIT ({TEMPLATE_TIME_LIMIT} s); it loops "
                            f"without end or does far too much work")


def _check_size(size: int, what: str):
    limit = getattr(_budget, "size_limit", TEMPLATE_SIZE_LIMIT)
    if size > limit:
        from jinja2.exceptions import SecurityError

        raise SecurityError(f"{what} would hold {size} characters or items, more than the limit of {limit} "
                            f"(TEMPLATE_SIZE_LIMIT plus 8x the size of the messages)")


def _size(value) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else 0


def _check_arguments(subject, args, kwargs, what: str):
    """Before a call or filter runs: numbers it is given (a width, a count) and the output it could write
    (its subject times its largest argument, e.g. replace or indent) stay within the size limit."""
    _check_time()
    values = [*args, *kwargs.values()]
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(abs(value), f"{what} with the argument {value}")
    biggest = max([1, *(_size(v) for v in values), *(abs(v) for v in values if type(v) is int)])
    if _size(subject) > 1 and biggest > 1:
        _check_size(_size(subject) * biggest, f"the result of {what}")


def _limited_filter(function):
    """A filter that checks the time and its arguments' sizes before it runs."""
    import functools

    @functools.wraps(function)
    def limited(*args, **kwargs):
        values = [a for a in args if not _is_jinja_internal(a)]
        if values:
            _check_arguments(values[0], values[1:], kwargs, f"the filter {function.__name__}")
        return function(*args, **kwargs)

    return limited


def _is_jinja_internal(value) -> bool:
    return type(value).__module__.startswith("jinja2.")


@lru_cache(maxsize=1)
def _limited_environment_class():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        """Jinja's immutable sandbox that also checks the time on every call, attribute and item access, and the
        size of what +, *, ** and % would build before building it."""

        intercepted_binops = frozenset(("+", "*", "**", "%"))

        def call_binop(self, context, operator, left, right):
            _check_time()
            if operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
                _check_size(int(abs(right)) * max(1, int(abs(left)).bit_length()) // 8, "a power")
            elif operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if _size(seq) and isinstance(count, int):
                        _check_size(_size(seq) * count, "a repeated string or list")
            elif operator == "+":
                _check_size(_size(left) + _size(right), "a concatenation")
            elif operator == "%" and isinstance(left, str):
                widths = [int(w) for w in re.findall(r"%[^a-zA-Z%]*?(\d+)", left)]
                _check_size(len(left) + sum(widths), "a %-formatted string")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
            subject = getattr(__obj, "__self__", None)
            _check_arguments(subject, args, kwargs, f"{getattr(__obj, '__name__', 'a call')}()")
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj, attribute):
            _check_time()
            if isinstance(obj, str) and attribute in ("format", "format_map"):  # widths such as {:>99999999}
                widths = [int(w) for w in re.findall(r"(\d+)", obj)]
                _check_size(len(obj) + sum(widths), "a formatted string")
            return super().getattr(obj, attribute)

        def getitem(self, obj, argument):
            _check_time()
            return super().getitem(obj, argument)

    return LimitedSandbox


def _trace(frame, event, arg):
    """Checks the time on every line of compiled template code (a loop that makes no call is caught too)."""
    if frame.f_code.co_filename != "<template>":
        return None
    _check_time()
    return _trace_lines


def _trace_lines(frame, event, arg):
    _check_time()
    return _trace_lines


def render_limited(template, input_size: int, **variables) -> str:
    """Render within TEMPLATE_TIME_LIMIT and the size limit; any failure is a ChatTemplateError."""
    import jinja2

    _budget.deadline = time.monotonic() + TEMPLATE_TIME_LIMIT
    _budget.size_limit = TEMPLATE_SIZE_LIMIT + 8 * input_size
    tracing = sys.gettrace() is None  # a debugger or coverage tool keeps its own tracer; the hooks still apply
    if tracing:
        sys.settrace(_trace)
    try:
        pieces, length = [], 0
        for piece in template.generate(**variables):
            length += len(piece)
            _check_size(length, "the rendered text")
            pieces.append(piece)
        return "".join(pieces)
    except jinja2.exceptions.TemplateError as err:
        raise chat_template_error(err, "refused the conversation" if type(err) is jinja2.exceptions.TemplateError
                                  else "failed") from None
    except (RecursionError, MemoryError) as err:
        raise chat_template_error(jinja2.exceptions.SecurityError(f"{type(err).__name__}: {err}"), "failed") \
            from None
    except LeanformersError:
        raise
    except Exception as err:  # noqa: BLE001 (whatever Python raises inside an untrusted template is its failure)
        raise chat_template_error(jinja2.exceptions.TemplateError(f"{type(err).__name__}: {err}"), "failed") \
            from None
    finally:
        if tracing:
            sys.settrace(None)
        _budget.deadline = None


@lru_cache(maxsize=None)
def _error_class(jinja_class):
    """ChatTemplateError that is also `jinja_class`, so code that catches either catches it."""

    def __init__(self, message):  # noqa: N807
        Exception.__init__(self, message)

    def __str__(self):  # noqa: N807
        return str(self.args[0])

    return type(jinja_class.__name__, (ChatTemplateError, jinja_class),
                {"__init__": __init__, "__str__": __str__, "__module__": __name__})


def chat_template_error(err, what: str) -> ChatTemplateError:
    """A ChatTemplateError (also of the jinja2 class of `err`) saying what failed and what to do."""
    detail = str(err).rstrip(".")
    line = getattr(err, "lineno", None)
    where = f" (line {line})" if line else ""
    if what == "refused the conversation":
        message = f"The chat template refused the conversation: {detail}"
    else:
        message = (f"The chat template {what}{where}: {detail}. Chat templates come with the checkpoint "
                   f"(tokenizer_config.json, chat_template.jinja or a GGUF file); fix it, or pass a template you "
                   f"trust as chat_template=.")
    import jinja2

    jinja_class = type(err) if isinstance(err, jinja2.exceptions.TemplateError) else jinja2.exceptions.TemplateError
    return _error_class(jinja_class)(message)


class _DictFactory:
    """`dict(...)` inside a template, without exposing the dict type itself."""

    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


def _namespace_class(jinja2):
    class SafeNamespace(jinja2.utils.Namespace):
        """`namespace(...)` that refuses attribute names starting with an underscore (no way into internals)."""

        def __init__(*args, **kwargs):
            self, args = args[0], args[1:]
            values = dict(*args, **kwargs)
            for key in values:
                SafeNamespace.check(key)
            jinja2.utils.Namespace.__init__(self, values)

        def __setitem__(self, key, value):
            SafeNamespace.check(key)
            _check_size(_size(value), f"namespace attribute {key!r}")
            jinja2.utils.Namespace.__setitem__(self, key, value)

        @staticmethod
        def check(key):
            if isinstance(key, str) and key.startswith("_"):
                raise jinja2.exceptions.SecurityError(f"A chat template may not set the attribute {key!r} of a "
                                                      f"namespace (names starting with '_' are refused).")

    return SafeNamespace


def plain(value):
    """`value` rebuilt from JSON types only (str, int, float, bool, None, dict, list, tuple); objects become their
    dict (dataclasses, pydantic models) or a placeholder such as "<ndarray>", so a template can call no method."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value) if kind is not str else str.__str__(value)
    if isinstance(value, Mapping):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):  # numpy scalars: np.bool_(False) must stay falsy
        return plain(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return plain(value.model_dump())
    return f"<{type(value).__name__}>"


def _size_of(value) -> int:
    """Characters and items of plain data (what a render may fairly build from it, times a constant)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return len(value) + sum(_size_of(k) + _size_of(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return len(value) + sum(_size_of(v) for v in value)
    return 1


# ---------------------------------------------------------------------------------------------- rendering
def get_chat_template(tokenizer, chat_template: str | None = None, tools=None) -> str:
    """The template source to use: the argument (a source, or the name of one of the tokenizer's templates), else
    the tokenizer's ("tool_use" when tools are given and it has one, else "default")."""
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, dict):
        if chat_template is not None:
            return own.get(chat_template, chat_template)
        if tools is not None and "tool_use" in own:
            return own["tool_use"]
        if "default" in own:
            return own["default"]
        raise TokenizerError(f"This tokenizer has several chat templates and none is named 'default': pass "
                             f"chat_template= with one of {sorted(own)}.")
    if chat_template is not None:
        return chat_template
    if own is None:
        raise TokenizerError("This tokenizer has no chat template: pass chat_template= (a Jinja template) or set "
                             "tokenizer.chat_template.")
    return own


def _messages(conversation) -> list[dict]:
    """A conversation as plain message dicts; keys whose value is None are dropped (templates test for presence)."""
    conversation = getattr(conversation, "messages", conversation)
    out = []
    for message in conversation:
        message = plain(message)
        if not isinstance(message, dict):
            raise TokenizerError(f"Chat messages must be dicts with 'role' and 'content' keys; got {message!r}.")
        message = {key: value for key, value in message.items() if value is not None}
        reasoning = next((message[k] for k in _REASONING_KEYS if message.get(k) is not None), None)
        if reasoning is not None:  # templates read one of the names of a reasoning trace: give them all
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        out.append(message)
    return out


def _tool_schemas(tools):
    if tools is None:
        return None
    for tool in tools:
        if not isinstance(tool, Mapping):
            raise TokenizerError(f"Tools must be JSON schemas (dicts with 'type': 'function' and a 'function' "
                                 f"entry); got {type(tool).__name__}. Write the schema of the function as a dict.")
    return plain(list(tools))


def _mark_final_message(messages: list[dict], key: str, template: str) -> str:
    """Append the continuation tag to the last message's `key` (its last text block for block contents)."""
    if not messages or messages[-1].get(key) is None:
        raise TokenizerError(f"continue_final_message is set but the last message has no {key!r} to continue.")
    if key not in template:
        raise TokenizerError(f"continue_final_message={key!r}, but the chat template never reads {key!r}.")
    final = messages[-1][key]
    if isinstance(final, (list, tuple)):
        texts = [block for block in final if isinstance(block, dict) and "text" in block]
        if not texts:
            raise TokenizerError("continue_final_message is set but the last message has no text block.")
        text = texts[-1]["text"]
        texts[-1]["text"] = text + _CONTINUE_TAG
        return text
    for name in ([k for k in _REASONING_KEYS if messages[-1].get(k) == final] if key in _REASONING_KEYS else [key]):
        messages[-1][name] = final + _CONTINUE_TAG
    return final


def _cut_after_final(rendered: str, final: str) -> str:
    """Drop everything the template wrote after the continued message (its end-of-turn tokens)."""
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in rendered or tag not in rendered:
        raise TokenizerError("continue_final_message is set but the chat template drops part of the last message, "
                             "so it cannot be continued. Check the template and the message.")
    at = rendered.rindex(tag)
    if rendered[at:at + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()  # the template trimmed the message: trim what is left too


def _locate_generation(rendered: str) -> tuple[str, list[tuple[int, int]]]:
    """Remove the {% generation %} markers; return the text and the character spans they enclosed."""
    spans, out, length, start = [], [], 0, None
    for piece in re.split(f"({_OPEN}|{_CLOSE})", rendered):
        if piece == _OPEN:
            start = length
        elif piece == _CLOSE:
            if start is None:  # the marker character came from the template or a message, not from {% generation %}
                raise TokenizerError(f"The chat template's output holds U+{ord(_CLOSE):04X}, the character that marks "
                                     f"the end of a {{% generation %}} block; remove it from the template or the "
                                     f"messages.")
            spans.append((start, length))
            start = None
        else:
            out.append(piece)
            length += len(piece)
    return "".join(out), spans


def render_chats(conversations, chat_template: str, tools=None, documents=None, add_generation_prompt=False,
                 continue_final_message=False, **variables) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """Render each conversation: (texts, character spans of {% generation %} blocks per text)."""
    template = compile_template(chat_template)
    if documents is not None and not all(isinstance(d, Mapping) for d in documents):
        raise TokenizerError("Documents must be dicts (e.g. with 'title' and 'text' keys).")
    tools, documents, variables = _tool_schemas(tools), plain(documents), plain(variables)
    input_size = _size_of(tools) + _size_of(documents) + _size_of(variables)
    texts, all_spans = [], []
    for conversation in conversations:
        messages = _messages(conversation)
        final = None
        if continue_final_message:
            key = continue_final_message if isinstance(continue_final_message, str) else "content"
            final = _mark_final_message(messages, key, chat_template)
        rendered = render_limited(template, _size_of(messages) + input_size, messages=messages, tools=tools,
                                  documents=documents, add_generation_prompt=add_generation_prompt, **variables)
        rendered, spans = _locate_generation(rendered)
        if final is not None:
            rendered = _cut_after_final(rendered, final)
        texts.append(rendered)
        all_spans.append(spans)
    return texts, all_spans


# ---------------------------------------------------------------------------------------------- the tokenizer call
def apply_chat_template(tokenizer, conversation, tools=None, documents=None, chat_template: str | None = None,
                        add_generation_prompt: bool = False, continue_final_message: bool | str = False,
                        tokenize: bool = True, padding=False, truncation: bool = False, max_length: int | None = None,
                        return_tensors=None, return_dict: bool = True, return_assistant_tokens_mask: bool = False,
                        tokenizer_kwargs: dict | None = None, **kwargs):
    """`tokenizer.apply_chat_template(...)`: the rendered text (tokenize=False), the token ids (return_dict=False)
    or a BatchEncoding; a list of conversations gives a batch. Extra keywords are template variables; the named
    special tokens (bos_token, eos_token, ...) are template variables too."""
    if not tokenize:
        return_dict = False
    if return_assistant_tokens_mask and not (tokenize and return_dict):
        raise TokenizerError("return_assistant_tokens_mask=True needs tokenize=True and return_dict=True.")
    if continue_final_message and add_generation_prompt:
        raise TokenizerError("continue_final_message and add_generation_prompt cannot be used together: the first "
                             "continues the last message, the second opens a new assistant message.")
    if isinstance(conversation, (list, tuple)) and len(conversation) == 0:
        raise TokenizerError("Cannot apply a chat template to an empty conversation: pass at least one message.")
    batched = isinstance(conversation, (list, tuple)) and (
        isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages"))
    conversations = conversation if batched else [conversation]
    source = get_chat_template(tokenizer, chat_template, tools)
    variables = {**tokenizer.special_tokens_map, **kwargs}
    texts, spans = render_chats(conversations, source, tools=tools, documents=documents,
                                add_generation_prompt=add_generation_prompt,
                                continue_final_message=continue_final_message, **variables)
    if not tokenize:
        return texts if batched else texts[0]
    encoded = tokenizer(texts if batched else texts[0], padding=padding, truncation=truncation,
                        max_length=max_length, add_special_tokens=False, return_tensors=return_tensors,
                        **(tokenizer_kwargs or {}))
    if not return_dict:
        return encoded["input_ids"]
    if return_assistant_tokens_mask:
        _add_assistant_masks(encoded, spans, batched, return_tensors)
    return encoded


def _add_assistant_masks(encoded, spans, batched: bool, return_tensors):
    """1 for every token that overlaps a {% generation %} span of its text, else 0."""
    masks = []
    for row, row_spans in enumerate(spans):
        offsets = encoded.encodings[row].offsets
        masks.append([int(any(start < hi and end > lo for lo, hi in row_spans)) for start, end in offsets])
    encoded["assistant_masks"] = masks if batched or return_tensors else masks[0]
    if return_tensors:
        encoded.convert_to_tensors(tensor_type=return_tensors)
