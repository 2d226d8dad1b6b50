"""Encoding calls of a tokenizer: `__call__`, `encode`, `tokenize`, `pad`. The Rust engine encodes the whole batch
at once; padded tensors are built in NumPy from one flat copy of the ids per field."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import TokenizerError
from . import templates
from .encoding import BatchEncoding, attention_from_lengths, pack_pairs, pack_rows
from .strategies import PaddingStrategy, TruncationStrategy, padded_length, resolve_strategies, tensor_type

logger = logging.getLogger("leanformers")

# Fields of a call's output, in the order transformers returns them.
_FIELDS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping", "length")


def _is_text(value) -> bool:
    """str, list of str, list of lists/tuples of str (three levels at most), as transformers accepts."""
    for _ in range(3):
        if isinstance(value, str):
            return True
        if not isinstance(value, (list, tuple)):
            return False
        if len(value) == 0:
            return True
        value = value[0]
    return isinstance(value, str)


def _batch_inputs(text, text_pair, is_split_into_words: bool):
    """(list of inputs for the Rust engine, whether the call was batched)."""
    for name, value in (("text", text), ("text_pair", text_pair)):
        if value is not None and not _is_text(value):
            raise TokenizerError(
                f"`{name}` must be a str (one example), a list of str (a batch, or one pre-split example with "
                f"is_split_into_words=True) or a list of lists of str (a batch of pre-split examples); got "
                f"{type(value).__name__}.")
    if is_split_into_words:
        batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
    else:
        batched = isinstance(text, (list, tuple))
    if not batched:
        return ([(text, text_pair)] if text_pair else [text]), False
    if isinstance(text_pair, str):
        raise TokenizerError("`text` is a batch but `text_pair` is a single str: pass a list of second sequences "
                             "with one entry per example in `text`.")
    if text_pair is not None and len(text) != len(text_pair):
        raise TokenizerError(f"`text` has {len(text)} examples but `text_pair` has {len(text_pair)}: pass one "
                             f"second sequence per example.")
    return (list(zip(text, text_pair)) if text_pair is not None else list(text)), True


class EncodeMixin:
    """The encoding half of PreTrainedTokenizerFast (needs `_tokenizer`, the special tokens and the settings)."""

    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None,
                 add_special_tokens: bool = True, padding=False, truncation=None, max_length: int | None = None,
                 stride: int = 0, is_split_into_words: bool = False, pad_to_multiple_of: int | None = None,
                 padding_side: str | None = None, return_tensors=None, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool | None = None, return_overflowing_tokens: bool = False,
                 return_special_tokens_mask: bool = False, return_offsets_mapping: bool = False,
                 return_length: bool = False, verbose: bool = True, tokenizer_kwargs: dict | None = None,
                 **kwargs) -> BatchEncoding:
        """Tokenize one text, a pair, a batch of texts or pairs (or pre-split words) into model inputs."""
        options = dict(add_special_tokens=add_special_tokens, stride=stride, is_split_into_words=is_split_into_words,
                       pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side, return_tensors=return_tensors,
                       return_token_type_ids=return_token_type_ids, return_attention_mask=return_attention_mask,
                       return_overflowing_tokens=return_overflowing_tokens,
                       return_special_tokens_mask=return_special_tokens_mask,
                       return_offsets_mapping=return_offsets_mapping, return_length=return_length, verbose=verbose,
                       split_special_tokens=kwargs.pop("split_special_tokens", self.split_special_tokens))
        max_target_length = kwargs.pop("max_target_length", None)
        options.update(tokenizer_kwargs or {})
        options.update(kwargs)
        if text is None and text_target is None:
            raise TokenizerError("Nothing to tokenize: pass `text` (or `text_target` for labels).")
        padding_strategy, truncation_strategy, max_length = resolve_strategies(
            self, padding=options.pop("padding", padding), truncation=options.pop("truncation", truncation),
            max_length=options.pop("max_length", max_length), pad_to_multiple_of=options["pad_to_multiple_of"],
            verbose=options["verbose"])
        common = dict(padding_strategy=padding_strategy, truncation_strategy=truncation_strategy, **options)
        encodings = None
        if text is not None:
            self._switch_to_input_mode()
            encodings = self._encode_plus(text, text_pair, max_length=max_length, **common)
        if text_target is None:
            return encodings
        target_length = max_target_length if max_target_length is not None else max_length
        self._switch_to_target_mode()  # e.g. targets end with the target language code
        try:
            targets = self._encode_plus(text_target, text_pair_target, max_length=target_length, **common)
        finally:
            self._switch_to_input_mode()
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def _switch_to_input_mode(self):
        """Family hook: the special tokens of inputs (called before encoding `text`)."""

    def _switch_to_target_mode(self):
        """Family hook: the special tokens of targets (called before encoding `text_target`)."""

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
               max_length: int | None = None, stride: int = 0, padding_side: str | None = None, return_tensors=None,
               **kwargs):
        """Token ids of a text (or pair, or batch)."""
        padding_strategy, truncation_strategy, max_length = resolve_strategies(
            self, padding=padding, truncation=truncation, max_length=max_length,
            pad_to_multiple_of=kwargs.get("pad_to_multiple_of"), verbose=kwargs.get("verbose", True))
        return self._encode_plus(text, text_pair, add_special_tokens=add_special_tokens,
                                 padding_strategy=padding_strategy, truncation_strategy=truncation_strategy,
                                 max_length=max_length, stride=stride, padding_side=padding_side,
                                 return_tensors=return_tensors, **kwargs)["input_ids"]

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One text or pair (transformers 4 name; same as calling the tokenizer)."""
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """A batch of texts or (text, text_pair) tuples (transformers 4 name; same as calling the tokenizer)."""
        return self(list(batch_text_or_text_pairs), **kwargs)

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Token strings of a text (and pair)."""
        return self._encode_plus(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    def set_truncation_and_padding(self, padding_strategy, truncation_strategy, max_length, stride,
                                   pad_to_multiple_of, padding_side):
        """Configure the engine's truncation and padding for the next encode (only what changed)."""
        backend = self._tokenizer
        if truncation_strategy == TruncationStrategy.DO_NOT_TRUNCATE:
            if backend.truncation is not None:
                backend.no_truncation()
        else:
            target = {"max_length": max_length, "stride": stride, "strategy": TruncationStrategy(truncation_strategy)
                      .value, "direction": self.truncation_side}
            current = backend.truncation
            if current is None or any(current.get(key) != value for key, value in target.items()):
                try:
                    backend.enable_truncation(**target)
                except Exception as err:  # the engine raises plain Exception
                    raise TokenizerError(f"Cannot truncate to max_length={max_length} with stride={stride}: {err}. "
                                         f"Use a stride smaller than max_length.") from err
        if padding_strategy == PaddingStrategy.DO_NOT_PAD:
            if backend.padding is not None:
                backend.no_padding()
            return
        target = {"length": max_length if padding_strategy == PaddingStrategy.MAX_LENGTH else None,
                  "direction": padding_side or self.padding_side, "pad_id": self.pad_token_id,
                  "pad_token": self.pad_token, "pad_type_id": self.pad_token_type_id,
                  "pad_to_multiple_of": pad_to_multiple_of}
        if backend.padding != target:
            backend.enable_padding(**target)

    def _encode_plus(self, text, text_pair=None, add_special_tokens: bool = True,
                     padding_strategy=PaddingStrategy.DO_NOT_PAD,
                     truncation_strategy=TruncationStrategy.DO_NOT_TRUNCATE,
                     max_length=None, stride: int = 0, is_split_into_words: bool = False, pad_to_multiple_of=None,
                     padding_side=None, return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                     return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                     return_offsets_mapping: bool = False, return_length: bool = False, verbose: bool = True,
                     split_special_tokens=None, **kwargs) -> BatchEncoding:
        if kwargs:
            self._warn_once("kwargs", f"Keyword arguments {sorted(kwargs)} are not used by the tokenizer.")
        batch, batched = _batch_inputs(text, text_pair, is_split_into_words)
        kind = tensor_type(return_tensors)
        side = padding_side or self.padding_side
        if side not in ("right", "left"):
            raise TokenizerError(f"padding_side must be 'right' or 'left', not {side!r}.")
        in_numpy = kind is not None and padding_strategy != PaddingStrategy.DO_NOT_PAD and not return_overflowing_tokens
        self.set_truncation_and_padding(PaddingStrategy.DO_NOT_PAD if in_numpy else padding_strategy,
                                        truncation_strategy, max_length, stride, pad_to_multiple_of, side)
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        if self._tokenizer.encode_special_tokens != split:
            self._tokenizer.encode_special_tokens = split
        encodings = self._run(batch, add_special_tokens, is_split_into_words)
        fields = self._fields(return_token_type_ids, return_attention_mask, return_special_tokens_mask,
                              return_offsets_mapping, return_length)
        mapping = None
        if return_overflowing_tokens:
            rows, mapping = [], []
            for index, encoding in enumerate(encodings):
                group = [encoding, *encoding.overflowing]
                rows.extend(group)
                mapping.extend([index] * len(group))
            encodings = rows
        if max_length is None and verbose and encodings:
            self._check_length(max(len(encoding) for encoding in encodings))
        if in_numpy:
            return self._arrays(encodings, fields, kind, padding_strategy, max_length, pad_to_multiple_of, side)
        data = self._lists(encodings, fields)
        if mapping is not None:
            data["overflow_to_sample_mapping"] = mapping
        if not batched and kind is None and mapping is None:
            data = {key: value[0] if value and isinstance(value[0], list) else value for key, value in data.items()}
            return BatchEncoding(data, encodings)
        return BatchEncoding(data, encodings, tensor_type=kind)

    def _run(self, batch, add_special_tokens: bool, is_pretokenized: bool):
        try:
            return self._tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens,
                                                is_pretokenized=is_pretokenized)
        except BaseException as err:  # plain Exception, or a Rust panic (a BaseException) on impossible options
            if not isinstance(err, Exception) and type(err).__name__ != "PanicException":
                raise
            surrogate = _malformed(batch, is_pretokenized) or _lone_surrogate(batch)
            if surrogate is not None:
                raise TokenizerError(surrogate) from None
            raise TokenizerError(f"The tokenizer could not encode the input: {err}. Check the truncation options: "
                                 f"only_second needs pairs, and max_length must leave room for the special tokens "
                                 f"and be larger than stride plus the part of the other sequence kept.") from None

    def _fields(self, token_type_ids, attention_mask, special_tokens_mask, offsets, length) -> tuple[str, ...]:
        wanted = {
            "input_ids": True,
            "token_type_ids": "token_type_ids" in self.model_input_names if token_type_ids is None else token_type_ids,
            "attention_mask": "attention_mask" in self.model_input_names if attention_mask is None else attention_mask,
            "special_tokens_mask": special_tokens_mask, "offset_mapping": offsets, "length": length,
        }
        return tuple(name for name in _FIELDS if wanted[name])

    @staticmethod
    def _lists(encodings, fields) -> dict:
        getters = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask",
                   "special_tokens_mask": "special_tokens_mask", "offset_mapping": "offsets"}
        data = {}
        for name in fields:
            if name == "length":
                data[name] = [len(encoding.ids) for encoding in encodings]
            else:
                data[name] = [getattr(encoding, getters[name]) for encoding in encodings]
        return data

    def _arrays(self, encodings, fields, kind, strategy, max_length, pad_to_multiple_of, side) -> BatchEncoding:
        """Pad in NumPy: one flat copy of the ids per field, no padded Python lists."""
        lengths = np.fromiter((len(encoding) for encoding in encodings), dtype=np.int64, count=len(encodings))
        longest = int(lengths.max()) if len(encodings) else 0
        width = padded_length(longest, strategy, max_length, pad_to_multiple_of)
        pad = dict(direction=side, pad_id=self.pad_token_id, pad_type_id=self.pad_token_type_id,
                   pad_token=self.pad_token)
        if longest > width:  # rows longer than max_length without truncation: ragged, as the engine leaves them
            for encoding in encodings:
                encoding.pad(width, **pad)
            return BatchEncoding(self._lists(encodings, fields), encodings, tensor_type=kind)
        left = side == "left"
        data = {}
        for name in fields:
            if name == "input_ids":
                data[name] = pack_rows([e.ids for e in encodings], lengths, width, self.pad_token_id, left)
            elif name == "token_type_ids" and self._single_types_are_zero(encodings):
                # single sequences under an all-zero template: no need to read the types row by row
                data[name] = np.full((len(encodings), width), self.pad_token_type_id, dtype=np.int64)
                data[name][attention_from_lengths(lengths, width, left).astype(bool)] = 0
            elif name == "token_type_ids":
                data[name] = pack_rows([e.type_ids for e in encodings], lengths, width, self.pad_token_type_id, left)
            elif name == "attention_mask":
                data[name] = attention_from_lengths(lengths, width, left)
            elif name == "special_tokens_mask":
                data[name] = pack_rows([e.special_tokens_mask for e in encodings], lengths, width, 1, left)
            elif name == "offset_mapping":
                data[name] = pack_pairs([e.offsets for e in encodings], lengths, width, left)
            else:
                data[name] = np.full(len(encodings), width, dtype=np.int64)
        out = BatchEncoding(data, encodings, tensor_type=kind)
        out._pad_encodings_later(length=width, **pad)
        return out

    def _single_types_are_zero(self, encodings) -> bool:
        if any(encoding.n_sequences != 1 for encoding in encodings):
            return False
        return all(type_id == 0 for _, type_id in templates.layout(self._tokenizer.post_processor, pair=False))

    def _check_length(self, longest: int):
        if longest > self.model_max_length:
            self._warn_once("too_long", f"Token indices sequence length is longer than the specified maximum "
                                        f"sequence length for this model ({longest} > {self.model_max_length}). "
                                        f"Running this sequence through the model will result in indexing errors")

    def _warn_once(self, key: str, message: str):
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def pad(self, encoded_inputs, padding=True, max_length: int | None = None, pad_to_multiple_of: int | None = None,
            padding_side: str | None = None, return_attention_mask: bool | None = None, return_tensors=None,
            verbose: bool = True) -> BatchEncoding:
        """Pad already-encoded inputs (one dict, a dict of batched lists, or a list of dicts, e.g. in a collate
        function) to the longest row or to max_length."""
        from .padding import pad_inputs

        return pad_inputs(self, encoded_inputs, padding, max_length, pad_to_multiple_of, padding_side,
                          return_attention_mask, return_tensors, verbose)


def _malformed(batch, is_pretokenized: bool) -> str | None:
    """What to say about the first row of a batch that is neither a text nor a pair of texts (of words, when
    pre-split), e.g. a list nested one level too deep or holding a number."""
    def is_text(value):
        return isinstance(value, str) if not is_pretokenized else \
            isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value)

    for row, item in enumerate(batch):
        if is_text(item) or isinstance(item, (tuple, list)) and len(item) == 2 and all(map(is_text, item)):
            continue
        kind = "a list of str (pre-split words)" if is_pretokenized else "a str"
        return (f"Text {row} of `text` is {str(item)[:60]} (type {type(item).__name__}); each text must be "
                f"{kind}, or a pair of them. Check how deeply the input is nested and that it holds only strings.")
    return None


def _lone_surrogate(batch) -> str | None:
    """What to say about the first text holding a lone UTF-16 surrogate (no UTF-8 form, so no engine takes it)."""
    for row, item in enumerate(batch):
        for text in item if isinstance(item, (tuple, list)) else (item,):
            if not isinstance(text, str):
                continue
            for position, char in enumerate(text):
                if "\ud800" <= char <= "\udfff":
                    return (f"Text {row} holds a lone surrogate U+{ord(char):04X} at character {position}: it is not "
                            f"valid Unicode text and cannot be tokenized. Decode the source with errors='replace' "
                            f"(or remove the character) before tokenizing.")
    return None
