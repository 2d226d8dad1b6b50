"""Streamers: receive token ids as `generate()` produces them and hand out text, whole words at a time."""

from __future__ import annotations

import asyncio
import unicodedata
from queue import Queue

# CJK ideograph blocks: each character is a word of its own, so it can be printed at once
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


class BaseStreamer:
    """Receives `put(token_ids)` for the prompt and each new token, then `end()`."""

    def put(self, value):
        raise NotImplementedError()

    def end(self):
        raise NotImplementedError()


class TextStreamer(BaseStreamer):
    """Prints text to stdout as soon as whole words are decoded (batch size 1).

    `skip_prompt` leaves the prompt out; `decode_kwargs` go to `tokenizer.decode` (e.g. skip_special_tokens).
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value):
        if len(value.shape) > 1:
            if value.shape[0] > 1:
                raise ValueError("TextStreamer only supports batch size 1; stream one prompt at a time.")
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        pending = text[self.print_len:]
        if text.endswith("\n"):  # a line is complete: flush it and restart from its last token
            self.token_cache = self.token_cache[-1:]
            self.print_len = len(self.tokenizer.decode(self.token_cache[-1], **self.decode_kwargs))
            printable = pending
        elif text and _is_cjk(ord(text[-1])):
            printable = pending
            self.print_len += len(printable)
        elif all(c.isspace() or unicodedata.category(c)[0] in "LMN" for c in pending):
            printable = pending
            self.print_len += len(printable)
        else:  # the last word may still change (a multi-token character, punctuation): hold it back
            printable = text[self.print_len:text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self):
        printable = ""
        if self.token_cache:
            printable = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)[self.print_len:]
        self.token_cache = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False):
        print(text, flush=True, end=None if stream_end else "")


def _is_cjk(codepoint: int) -> bool:
    return any(lo <= codepoint <= hi for lo, hi in _CJK_RANGES)


class TextIteratorStreamer(TextStreamer):
    """Collects the text in a queue; iterate over it (e.g. while `generate()` runs in another thread)."""

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False):
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self):
        value = self.text_queue.get(timeout=self.timeout)
        if value == self.stop_signal:
            raise StopIteration()
        return value


class AsyncTextIteratorStreamer(TextStreamer):
    """Like TextIteratorStreamer, for `async for` in the event loop that created it."""

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue = asyncio.Queue()
        self.stop_signal = None
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()

    def on_finalized_text(self, text: str, stream_end: bool = False):
        self.loop.call_soon_threadsafe(self.text_queue.put_nowait, text)
        if stream_end:
            self.loop.call_soon_threadsafe(self.text_queue.put_nowait, self.stop_signal)

    def __aiter__(self):
        return self

    async def __anext__(self):
        async with asyncio.timeout(self.timeout):
            value = await self.text_queue.get()
        if value == self.stop_signal:
            raise StopAsyncIteration()
        return value
