"""The text of every token of a tokenizer, as stop-string matching needs it.

Byte-level vocabularies (GPT-2 style) and byte-fallback vocabularies (`<0x0A>` tokens, Llama style) are matched as
UTF-8 bytes, so a character split over several tokens is still found; other vocabularies as text.
"""

from __future__ import annotations

import json

_PREFIX = "abcdef"  # decoded in front of each token so that leading-space rules apply as inside a text
_CACHE: dict[int, tuple] = {}


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def matching_mode(tokenizer) -> str | None:
    """'byte_level', 'byte_fallback' or None (plain text), from the tokenizer's decoder."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return None
    if type(decoder).__name__ == "ByteLevel":
        return "byte_level"
    state = getattr(decoder, "__getstate__", lambda: None)()
    try:
        found = json.dumps(json.loads(state)) if isinstance(state, (str, bytes)) else ""
    except ValueError:
        found = ""
    if '"ByteFallback"' in found:
        return "byte_fallback"
    if '"ByteLevel"' in found:
        return "byte_level"
    return None


def token_texts(tokenizer) -> tuple[dict[int, str | bytes], bool]:
    """({token id: its text or bytes}, whether the texts are bytes); cached per tokenizer object."""
    cached = _CACHE.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1], cached[2]
    mode = matching_mode(tokenizer)
    as_bytes = mode is not None
    byte_of = {c: b for b, c in byte_to_unicode().items()} if mode == "byte_level" else None
    base_ids = tokenizer(_PREFIX, add_special_tokens=False)["input_ids"]
    base_tokens = tokenizer.convert_ids_to_tokens(base_ids)
    texts = {}
    for token, index in tokenizer.get_vocab().items():
        text = _direct_bytes(token, mode, byte_of)
        if text is None:
            text = tokenizer.convert_tokens_to_string([*base_tokens, token])
            text = text[text.index(_PREFIX) + len(_PREFIX):]
            if as_bytes:
                text = text.encode("utf-8")
        texts[index] = text
    if len(_CACHE) > 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(tokenizer)] = (tokenizer, texts, as_bytes)
    return texts, as_bytes


def _direct_bytes(token: str, mode, byte_of) -> bytes | None:
    if mode == "byte_level" and all(c in byte_of for c in token):
        return bytes(byte_of[c] for c in token)
    if mode == "byte_fallback" and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        try:
            return bytes([int(token[3:5], 16)])
        except ValueError:
            return None
    return None
