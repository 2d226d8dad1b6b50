"""`PythonTokenizer`: the call rules of transformers' Python tokenizers, for families whose reference is one.

transformers' MarianTokenizer and CTRLTokenizer are Python tokenizers (`PreTrainedTokenizer`), and their outputs
follow that class: the text is cut at the added tokens, each stretch between them is tokenized on its own, and
truncation, special tokens and padding run on lists of ids (overflow comes back as `overflowing_tokens`, a pair
truncated `longest_first` loses its tokens by that class's count, no offsets). `PythonTokenizer` reproduces those
rules; the Rust engine under it (a `WordLevel` model) only keeps the vocabulary and the added tokens.
"""

from __future__ import annotations

import json
import os
import re

from tokenizers import Tokenizer
from tokenizers.models import WordLevel

from ..errors import ResourceNotFoundError, TokenizerError
from .base import PreTrainedTokenizerFast, _to_py
from .padding import pad_inputs
from .strategies import PaddingStrategy, TruncationStrategy

SPIECE_UNDERLINE = "\u2581"
_OVERFLOW_FIELDS = ("overflowing_tokens", "num_truncated_tokens")


def _read_json(path, what: str) -> dict:
    if isinstance(path, dict):
        return dict(path)
    if not os.path.isfile(os.fspath(path)):
        raise ResourceNotFoundError(f"No {what} at {os.fspath(path)!r}: pass the path of an existing file.")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _write_json(path: str, data: dict):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _is_batch(text, is_split_into_words: bool) -> bool:
    """transformers' rule: a list of texts (or of word lists, or of pairs) is a batch; a list of ids is not."""
    if not isinstance(text, (list, tuple)):
        return False
    if not text:
        return not is_split_into_words
    if is_split_into_words:
        return isinstance(text[0], (list, tuple))
    return isinstance(text[0], (str, list, tuple))


def _unpack_pair(item, pair, is_split_into_words: bool):
    """A batch entry written as a (text, text_pair) tuple -> its two parts, as transformers reads it."""
    if not isinstance(item, (list, tuple)) or not item or isinstance(item[0], int) or pair is not None:
        return item, pair
    parts_are_texts = all(isinstance(part, (str, list, tuple)) for part in item[:2])
    if len(item) == 2 and parts_are_texts and (not is_split_into_words or isinstance(item, tuple)):
        return item[0], item[1]
    if len(item) == 1:
        return item[0], None
    if not is_split_into_words:
        raise TokenizerError(f"A batch entry holds {len(item)} texts: pass one text, or a (text, text_pair) pair.")
    return item, None


class PythonTokenizer(PreTrainedTokenizerFast):
    """Base of the tokenizers whose transformers class is a Python tokenizer, with that class's call rules.

    A family gives `_read_vocabulary` (token -> id, read from its files), `_tokenize` (one stretch of text without
    added tokens -> token strings), `_convert_token_to_id`, `_convert_id_to_token`, `convert_tokens_to_string`
    and `save_vocabulary`; special tokens come from `build_inputs_with_special_tokens` and the related methods.
    """

    model_input_names = ["input_ids", "attention_mask"]
    token_type_ids_pattern = "bert_style"  # "all_zeros": every token type is 0, pairs too

    # ---- construction ----
    def _make_backend(self, tokenizer_object, tokenizer_file, kwargs) -> Tokenizer:
        if tokenizer_object is not None or tokenizer_file is not None:
            files = ", ".join(self.vocab_files_names.values())
            raise TokenizerError(f"{type(self).__name__} is built from its vocabulary files ({files}), not from a "
                                 f"tokenizer.json: pass them by keyword or load a folder that has them.")
        self._added_cache = None
        vocab = self._read_vocabulary(kwargs)
        return Tokenizer(WordLevel(vocab, unk_token=str(kwargs.get("unk_token"))))

    def _read_vocabulary(self, kwargs) -> dict[str, int]:
        """Family hook: read the vocabulary files named in `kwargs`; returns token -> id."""
        raise NotImplementedError

    @classmethod
    def saved_class_name(cls) -> str:
        return cls.__name__

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *init_inputs, **kwargs):
        """Load from a folder or a hub repo id: the vocabulary files, tokenizer_config.json and the added tokens.
        A tokenizer.json beside them is not used (it cannot hold this family's Python step)."""
        from ..hub import HUB_KWARGS, resolve_file
        from .files import load_init_kwargs, reading_errors

        hub = {key: value for key, value in kwargs.items() if key in HUB_KWARGS}
        init = load_init_kwargs(cls, pretrained_model_name_or_path, kwargs)
        if init.pop("tokenizer_file", None) is not None:
            for key, name in cls.vocab_files_names.items():
                if init.get(key) is None:
                    found = resolve_file(os.fspath(pretrained_model_name_or_path), name, missing_ok=True, **hub)
                    if found is not None:
                        init[key] = found
        with reading_errors(pretrained_model_name_or_path):
            return cls(*init_inputs, **init)

    @property
    def is_fast(self) -> bool:
        return False

    # ---- added tokens ----
    def _added_state(self):
        """(pattern matching the added tokens, content -> (id, AddedToken), id -> content), kept until tokens
        are added."""
        if self._added_cache is None:
            by_id = self._tokenizer.get_added_tokens_decoder()
            by_content = {token.content: (index, token) for index, token in sorted(by_id.items())}
            contents = sorted((content for content in by_content if content), key=len, reverse=True)
            pattern = re.compile("(" + "|".join(map(re.escape, contents)) + ")") if contents else None
            self._added_cache = (pattern, by_content, {index: token.content for index, token in by_id.items()})
        return self._added_cache

    def _register_added_tokens(self, added_tokens_decoder: dict, from_files: bool):
        super()._register_added_tokens(added_tokens_decoder, from_files)
        self._added_cache = None

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) not yet in the vocabulary at its end; returns how many were added."""
        added = super().add_tokens(new_tokens, special_tokens)
        self._added_cache = None
        return added

    # ---- text -> tokens -> ids ----
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Token strings of a text (and pair): added tokens whole, the text between them by the family."""
        split = kwargs.pop("split_special_tokens", self.split_special_tokens)
        tokens = self._text_tokens(text, split)
        return tokens if pair is None else tokens + self._text_tokens(pair, split)

    def _text_tokens(self, text: str, split_special_tokens: bool = False) -> list[str]:
        if split_special_tokens:
            return self._tokenize(text)
        pattern, added, _ = self._added_state()
        pieces = pattern.split(text) if pattern is not None else [text]
        pieces = [piece for piece in pieces if piece]
        _strip_around_added(pieces, added)
        specials = set(self.all_special_tokens)
        tokens = []
        for piece in pieces:
            if piece in added or piece in specials:
                tokens.append(piece)
            elif piece:
                tokens.extend(self._tokenize(piece))
        return tokens

    def _tokenize(self, text: str) -> list[str]:
        """Family hook: the tokens of a stretch of text that holds no added token."""
        raise NotImplementedError

    def _convert_token_to_id(self, token: str) -> int:
        """Family hook: the id of a token of the vocabulary (the unknown id for others)."""
        raise NotImplementedError

    def _convert_id_to_token(self, index: int) -> str:
        """Family hook: the token of an id of the vocabulary."""
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens):
        """Token string(s) -> id(s): added tokens first, then the family's vocabulary."""
        if tokens is None:
            return None
        added = self._added_state()[1]
        if isinstance(tokens, str):
            return added[tokens][0] if tokens in added else self._convert_token_to_id(tokens)
        return [added[token][0] if token in added else self._convert_token_to_id(token) for token in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) -> token string(s): added tokens first, then the family's vocabulary."""
        ids = _to_py(ids)
        names = self._added_state()[2]
        if isinstance(ids, int):
            return names[ids] if ids in names else self._convert_id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [names[index] if index in names else self._convert_id_to_token(index)
                for index in map(int, ids) if index not in skip]

    # ---- special tokens (defaults: none) ----
    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """The ids of one sequence or a pair with the family's special tokens (none by default)."""
        return list(token_ids_0) + list(token_ids_1 or [])

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """0 for the first sequence (with the special tokens it gets alone), 1 for the rest of a pair; all 0 when
        `token_type_ids_pattern` is "all_zeros"."""
        whole = len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))
        if token_ids_1 is None or self.token_type_ids_pattern == "all_zeros":
            return [0] * whole
        first = len(self.build_inputs_with_special_tokens(token_ids_0))
        return [0] * first + [1] * (whole - first)

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for special tokens: those in the ids when `already_has_special_tokens`, else those the family adds."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise TokenizerError("token_ids_1 must be None when already_has_special_tokens=True: the ids "
                                     "already hold both sequences.")
            special = set(self.all_special_ids)
            return [1 if index in special else 0 for index in token_ids_0]
        return [0] * (len(token_ids_0) + len(token_ids_1 or []))

    # ---- calls ----
    def _input_ids(self, text, is_split_into_words: bool, split_special_tokens: bool) -> list[int]:
        if isinstance(text, str):
            return self.convert_tokens_to_ids(self._text_tokens(text, split_special_tokens))
        if isinstance(text, (list, tuple)) and text:
            if isinstance(text[0], int):
                return list(text)
            if isinstance(text[0], str) and is_split_into_words:
                return self.convert_tokens_to_ids([token for word in text
                                                   for token in self._text_tokens(word, split_special_tokens)])
            if isinstance(text[0], str):
                return self.convert_tokens_to_ids(list(text))
        raise TokenizerError(f"Input must be a str, a list of str (tokens, or words with is_split_into_words=True) "
                             f"or a list of ids; got {type(text).__name__} {str(text)[:40]!r}.")

    def _encode_plus(self, text, text_pair=None, add_special_tokens: bool = True,
                     padding_strategy=PaddingStrategy.DO_NOT_PAD,
                     truncation_strategy=TruncationStrategy.DO_NOT_TRUNCATE, max_length=None, stride: int = 0,
                     is_split_into_words: bool = False, pad_to_multiple_of=None, padding_side=None,
                     return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                     return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                     return_offsets_mapping: bool = False, return_length: bool = False, verbose: bool = True,
                     split_special_tokens=None, **kwargs):
        from .encoding import BatchEncoding

        if return_offsets_mapping:
            self._warn_once("offsets", f"{type(self).__name__} returns no offset_mapping (as in transformers, whose "
                                       f"class is a Python tokenizer).")
        if kwargs:
            self._warn_once("kwargs", f"Keyword arguments {sorted(kwargs)} are not used by the tokenizer.")
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        rules = dict(add_special_tokens=add_special_tokens, truncation_strategy=TruncationStrategy(truncation_strategy),
                     max_length=max_length, stride=stride, return_token_type_ids=return_token_type_ids,
                     return_overflowing_tokens=return_overflowing_tokens,
                     return_special_tokens_mask=return_special_tokens_mask, return_length=return_length,
                     verbose=verbose)
        padding = dict(max_length=max_length, pad_to_multiple_of=pad_to_multiple_of, padding_side=padding_side,
                       verbose=verbose)
        if not _is_batch(text, is_split_into_words):
            first = self._input_ids(text, is_split_into_words, split)
            second = None if text_pair is None else self._input_ids(text_pair, is_split_into_words, split)
            row = self._prepare(first, second, PaddingStrategy(padding_strategy), return_attention_mask,
                                return_tensors, padding, **rules)
            return BatchEncoding(row, tensor_type=return_tensors, prepend_batch_axis=True)
        if text_pair is not None and (not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text)):
            raise TokenizerError("`text` is a batch, so `text_pair` must be a batch of the same length (one second "
                                 "sequence per example).")
        rows: dict[str, list] = {}
        for item, pair in zip(text, text_pair if text_pair is not None else [None] * len(text)):
            item, pair = _unpack_pair(item, pair, is_split_into_words)
            first = self._input_ids(item, is_split_into_words, split)
            second = None if pair is None else self._input_ids(pair, is_split_into_words, split)
            row = self._prepare(first, second, PaddingStrategy.DO_NOT_PAD, False, None, padding, **rules)
            for key, value in row.items():
                rows.setdefault(key, []).append(value)
        if return_tensors and return_overflowing_tokens:
            for key in _OVERFLOW_FIELDS:
                rows.pop(key, None)
        padded = pad_inputs(self, rows, PaddingStrategy(padding_strategy).value, max_length, pad_to_multiple_of,
                            padding_side, return_attention_mask, None, verbose)
        return BatchEncoding(dict(padded), tensor_type=return_tensors)

    def _prepare(self, ids, pair_ids, padding_strategy, return_attention_mask, return_tensors, padding: dict, *,
                 add_special_tokens, truncation_strategy, max_length, stride, return_token_type_ids,
                 return_overflowing_tokens, return_special_tokens_mask, return_length, verbose) -> dict:
        """One example: truncated, special tokens added, padded (the steps of `prepare_for_model`)."""
        if (return_overflowing_tokens and truncation_strategy == TruncationStrategy.LONGEST_FIRST
                and pair_ids is not None):
            raise TokenizerError("Overflowing tokens cannot be returned for pairs truncated 'longest_first': use "
                                 "truncation='only_first' or 'only_second'.")
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        extra = self.num_special_tokens_to_add(pair=pair_ids is not None) if add_special_tokens else 0
        total = len(ids) + len(pair_ids or []) + extra
        overflow = []
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length and total > max_length:
            ids, pair_ids, overflow = self.truncate_sequences(ids, pair_ids, total - max_length, truncation_strategy,
                                                              stride)
        if add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            types = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            sequence = ids + (pair_ids or [])
            types = [0] * len(sequence)
        row = {"input_ids": sequence}
        if return_token_type_ids:
            row["token_type_ids"] = types
        if return_special_tokens_mask:
            row["special_tokens_mask"] = (self.get_special_tokens_mask(ids, pair_ids) if add_special_tokens
                                          else [0] * len(sequence))
        if return_overflowing_tokens and not return_tensors and overflow:
            row["overflowing_tokens"] = overflow
            row["num_truncated_tokens"] = total - max_length if max_length else 0
        if max_length is None and verbose:
            self._check_length(len(sequence))
        if padding_strategy != PaddingStrategy.DO_NOT_PAD or return_attention_mask:
            row = dict(pad_inputs(self, row, padding_strategy.value, padding["max_length"],
                                  padding["pad_to_multiple_of"], padding["padding_side"], return_attention_mask,
                                  None, padding["verbose"]))
        if return_length:
            row["length"] = len(row["input_ids"])
        return row

    def truncate_sequences(self, ids: list[int], pair_ids: list[int] | None = None, num_tokens_to_remove: int = 0,
                           truncation_strategy="longest_first", stride: int = 0):
        """(ids, pair_ids, overflowing tokens) with `num_tokens_to_remove` tokens cut as transformers' Python
        tokenizers cut them (a `longest_first` pair returns no overflowing tokens)."""
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = TruncationStrategy(truncation_strategy)
        right = self.truncation_side == "right"
        if strategy == TruncationStrategy.ONLY_FIRST or (strategy == TruncationStrategy.LONGEST_FIRST
                                                         and pair_ids is None):
            window = min(len(ids), stride + num_tokens_to_remove)
            overflow = ids[-window:] if right else ids[:window]
            return (ids[:-num_tokens_to_remove] if right else ids[num_tokens_to_remove:]), pair_ids, overflow
        if strategy == TruncationStrategy.LONGEST_FIRST:
            first_cut, second_cut = _longest_first_cuts(len(ids), len(pair_ids or []), num_tokens_to_remove)
            if right:
                return (ids[:-first_cut] if first_cut > 0 else ids,
                        pair_ids[:-second_cut] if pair_ids and second_cut > 0 else pair_ids, [])
            return ids[first_cut:], (pair_ids[second_cut:] if pair_ids else None), []
        if strategy == TruncationStrategy.ONLY_SECOND and pair_ids:
            window = min(len(pair_ids), stride + num_tokens_to_remove)
            overflow = pair_ids[-window:] if right else pair_ids[:window]
            return ids, (pair_ids[:-num_tokens_to_remove] if right else pair_ids[num_tokens_to_remove:]), overflow
        return ids, pair_ids, []

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None, add_special_tokens: bool = True,
                          padding=False, truncation=False, max_length: int | None = None, stride: int = 0,
                          pad_to_multiple_of: int | None = None, padding_side: str | None = None,
                          return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                          return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                          return_length: bool = False, verbose: bool = True, prepend_batch_axis: bool = False,
                          **kwargs):
        """Ids (and pair ids) -> model inputs: truncated, with special tokens, padded."""
        from .encoding import BatchEncoding
        from .strategies import resolve_strategies

        padding_strategy, truncation_strategy, max_length = resolve_strategies(
            self, padding=padding, truncation=truncation, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
            verbose=verbose)
        row = self._prepare(
            list(ids), None if pair_ids is None else list(pair_ids), padding_strategy, return_attention_mask,
            return_tensors, dict(max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
                                 padding_side=padding_side, verbose=verbose),
            add_special_tokens=add_special_tokens, truncation_strategy=truncation_strategy, max_length=max_length,
            stride=stride, return_token_type_ids=return_token_type_ids,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask, return_length=return_length, verbose=verbose)
        return BatchEncoding(row, tensor_type=return_tensors, prepend_batch_axis=prepend_batch_axis)

    # ---- decoding ----
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs):
        """Ids -> text (a batch of id lists gives a list of texts)."""
        if isinstance(token_ids, dict):
            token_ids = token_ids["input_ids"]
        token_ids = _to_py(token_ids)
        if isinstance(token_ids, (list, tuple)) and token_ids and isinstance(token_ids[0], (list, tuple)):
            return [self._decode(ids, skip_special_tokens, clean_up_tokenization_spaces, **kwargs)
                    for ids in token_ids]
        return self._decode(token_ids, skip_special_tokens, clean_up_tokenization_spaces, **kwargs)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list[str]:
        """A batch of id lists -> list of texts."""
        sequences = _to_py(sequences)
        if len(sequences) == 0:
            return []
        texts = self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces, **kwargs)
        return [texts] if isinstance(texts, str) else texts

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None,
                **kwargs) -> str:
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        text = self.convert_tokens_to_string([tokens] if isinstance(tokens, str) else tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else (
            clean_up_tokenization_spaces)
        return self.clean_up_tokenization(text) if clean else text

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    # ---- saving ----
    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Family hook: write the vocabulary files to a folder."""
        raise NotImplementedError

    def save_pretrained(self, save_directory, legacy_format=None, filename_prefix=None, push_to_hub=False,
                        **kwargs) -> tuple[str, ...]:
        """Write tokenizer_config.json and the vocabulary files (and chat templates) to a folder that both
        leanformers and transformers load."""
        from .files import ADDED_TOKENS_FILE, TOKENIZER_CONFIG_FILE, _config_to_save, _save_templates, save_folder
        from .files import _write_json as write_config

        folder, prefix = save_folder(save_directory, filename_prefix, push_to_hub)
        config = {key: value for key, value in _config_to_save(self).items()
                  if key not in self.vocab_files_names and key != "tokenizer_config_file"}
        config_path = os.path.join(folder, prefix + TOKENIZER_CONFIG_FILE)
        write_config(config_path, config)
        written = [config_path]
        # tokens added after the vocabulary also go to added_tokens.json, which older readers of the folder use
        beyond = {token: index for token, index in self.added_tokens_encoder.items() if index >= self.vocab_size}
        if beyond:
            written.append(os.path.join(folder, prefix + ADDED_TOKENS_FILE))
            write_config(written[-1], beyond)
        written += self.save_vocabulary(folder, filename_prefix)
        return (*written, *_save_templates(self, folder, prefix))


def _strip_around_added(pieces: list[str], added: dict):
    """Apply the lstrip / rstrip / single_word options of the added tokens among `pieces` to their neighbours,
    in place, in the order transformers' Python tokenizers apply them."""
    for index in range(len(pieces)):
        piece = pieces[index]
        if piece not in added:
            continue
        token = added[piece][1]
        left = pieces[index - 1] if index > 0 else None
        right = pieces[index + 1] if index + 1 < len(pieces) else None
        if token.rstrip and right:
            pieces[index + 1] = right.lstrip()
        if token.lstrip and left:
            pieces[index - 1] = left.rstrip()
        if token.single_word:
            if left and left[-1] != " ":
                pieces[index - 1] += piece
                pieces[index] = ""
            elif right and right[0] != " ":
                pieces[index + 1] = piece + pieces[index + 1]
                pieces[index] = ""


def _longest_first_cuts(first: int, second: int, remove: int) -> tuple[int, int]:
    """Tokens cut from each sequence of a pair truncated `longest_first`: the longer one down to the length of the
    other, then both by half of what is left (the odd token from the second, or from the first when it is longer)."""
    uneven = min(abs(second - first), remove)
    even = remove - uneven
    if first > second:
        return uneven + even // 2, even - even // 2
    return even // 2, uneven + even - even // 2


# ---------------------------------------------------------------------------------------------------------- Marian
