"""BatchEncoding: what a tokenizer call returns. A dict of model inputs (lists, NumPy arrays or torch tensors) that
also keeps the Rust `tokenizers.Encoding` of each row, for the word/character/token alignment methods."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from ..errors import TokenizerError
from .strategies import TensorType, tensor_type as _tensor_kind

_RAGGED_HINT = ("the rows have different lengths, so they cannot be stacked into one tensor. Pass padding=True "
                "(and truncation=True for inputs longer than the model accepts) to get rows of equal length.")


class CharSpan(NamedTuple):
    """Characters [start, end) of the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Tokens [start, end) of an encoded sequence."""

    start: int
    end: int


def _is_empty(value) -> bool:
    if len(value) == 0:
        return True
    return isinstance(value[0], (list, tuple)) and all(_is_empty(item) for item in value)


def _is_tensor_like(value) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("torch")


def as_array(key: str, value, kind: TensorType):
    """One field (nested lists of ints, or already an array) -> NumPy array or torch tensor."""
    if kind == TensorType.PYTORCH:
        import torch

        if torch.is_tensor(value):
            return value
        if isinstance(value, np.ndarray):
            return torch.from_numpy(value)
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            value = np.stack(value)
            return torch.from_numpy(value)
    elif isinstance(value, np.ndarray):
        return value
    try:
        if isinstance(value, (list, tuple)) and _is_empty(value):
            array = np.asarray(value, dtype=np.int64)
        else:
            array = np.asarray(value)
    except ValueError:
        if kind == TensorType.NUMPY:  # ragged rows: an object array of rows, as transformers returns
            rows = np.empty(len(value), dtype=object)
            rows[:] = [np.asarray(row) for row in value]
            return rows
        raise TokenizerError(f"Cannot build a tensor from `{key}`: {_RAGGED_HINT}") from None
    if array.dtype == object:
        raise TokenizerError(f"Cannot build a tensor from `{key}`: its values are not all numbers, or {_RAGGED_HINT}")
    if kind == TensorType.PYTORCH:
        import torch

        return torch.from_numpy(array)
    return array


class BatchEncoding(dict):
    """Output of a tokenizer call: a dict of model inputs (`input_ids`, `attention_mask`, ...) with attribute access,
    `.to(device)`, and, when made by a tokenizer, the alignment methods between words, characters and tokens."""

    def __init__(self, data=None, encoding=None, tensor_type=None, prepend_batch_axis: bool = False,
                 n_sequences: int | None = None):
        super().__init__(data or {})
        if encoding is not None and not isinstance(encoding, (list, tuple)):
            encoding = [encoding]
        self._encodings = encoding
        self._pending_pad = None
        if n_sequences is None and encoding:
            n_sequences = encoding[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type=tensor_type, prepend_batch_axis=prepend_batch_axis)

    def _pad_encodings_later(self, **pad):
        """Pad the Rust encodings (to match the padded arrays) only when someone reads them."""
        self._pending_pad = pad

    def _settled(self):
        if self._pending_pad is not None:
            pad, self._pending_pad = self._pending_pad, None
            for encoding in self._encodings:
                encoding.pad(**pad)
        return self._encodings

    @property
    def data(self) -> dict:
        """The dict itself (transformers' BatchEncoding keeps its fields in `.data`)."""
        return self

    @property
    def n_sequences(self) -> int | None:
        """1 for single sequences, 2 for pairs, None when unknown."""
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        return self._encodings is not None

    @property
    def encodings(self):
        """The `tokenizers.Encoding` of each row (None when built from plain lists)."""
        return self._settled()

    def __getitem__(self, item):
        if isinstance(item, str):
            return dict.__getitem__(self, item)
        if self._encodings is not None:
            return self._settled()[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError("BatchEncoding keys are field names (str); integers index the encodings of a tokenizer "
                       "output and slices cut every field.")

    def __getattr__(self, item):
        if item.startswith("__") or item in ("_encodings", "_n_sequences", "_pending_pad"):
            raise AttributeError(item)
        try:
            return dict.__getitem__(self, item)
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field or attribute '{item}'") from None

    def __getstate__(self):
        return {"encodings": self._settled(), "n_sequences": self._n_sequences}

    def __setstate__(self, state):
        self._encodings = state.get("encodings")
        self._n_sequences = state.get("n_sequences")
        self._pending_pad = None

    def __reduce__(self):
        return (BatchEncoding, (dict(self),), self.__getstate__())

    def __repr__(self):
        # printed as the plain dict, as transformers prints it
        return dict.__repr__(self)

    # ---- alignment (needs the Rust encodings) ----
    def _rows(self, what: str):
        if not self._encodings:
            raise TokenizerError(f"{what}() needs the encodings of a tokenizer call; this BatchEncoding was built "
                                 f"from plain data.")
        return self._settled()

    def _split(self, what: str, first: int, second: int | None):
        """(batch index, index) from the `(index)` or `(batch_index, index)` calling forms."""
        rows = self._rows(what)
        batch, index = (0, first) if second is None else (first, second)
        if batch < 0:
            batch += len(rows)
        return rows[batch], index

    def tokens(self, batch_index: int = 0) -> list[str]:
        """Token strings of one row."""
        return self._rows("tokens")[batch_index].tokens

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: 0 (first sequence), 1 (second), None (special token)."""
        return self._rows("sequence_ids")[batch_index].sequence_ids

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token: the index of the word it comes from (None for special tokens)."""
        return self._rows("word_ids")[batch_index].word_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int:
        row, token = self._split("token_to_sequence", batch_or_token_index, token_index)
        return row.token_to_sequence(token + len(row) if token < 0 else token)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int:
        row, token = self._split("token_to_word", batch_or_token_index, token_index)
        return row.token_to_word(token + len(row) if token < 0 else token)

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0) -> TokenSpan | None:
        row, word = self._split("word_to_tokens", batch_or_word_index, word_index)
        span = row.word_to_tokens(word, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        row, token = self._split("token_to_chars", batch_or_token_index, token_index)
        span = row.token_to_chars(token)
        return CharSpan(*span) if span is not None else None

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0):
        row, char = self._split("char_to_token", batch_or_char_index, char_index)
        return row.char_to_token(char, sequence_index)

    def word_to_chars(self, batch_or_word_index: int, word_index: int | None = None,
                      sequence_index: int = 0) -> CharSpan | None:
        row, word = self._split("word_to_chars", batch_or_word_index, word_index)
        span = row.word_to_chars(word, sequence_index)
        return CharSpan(*span) if span is not None else None

    def char_to_word(self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0):
        row, char = self._split("char_to_word", batch_or_char_index, char_index)
        return row.char_to_word(char, sequence_index)

    # ---- tensors ----
    def convert_to_tensors(self, tensor_type=None, prepend_batch_axis: bool = False):
        """Turn every field into a NumPy array ("np") or torch tensor ("pt"); None leaves lists as they are."""
        kind = _tensor_kind(tensor_type)
        if kind is None:
            return self
        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            self[key] = as_array(key, value, kind)
        return self

    def to(self, device, *, non_blocking: bool = False) -> BatchEncoding:
        """Move every tensor to `device` (a str, an int or a torch.device); returns self."""
        if not isinstance(device, (str, int)) and type(device).__name__ != "device":
            raise TokenizerError(f"BatchEncoding.to() takes a device (e.g. 'cuda', 0, torch.device('cpu')), not "
                                 f"{device!r}: cast dtypes on the model, token ids must stay integers.")
        for key, value in list(self.items()):
            if callable(getattr(value, "to", None)):
                self[key] = value.to(device=device, non_blocking=non_blocking)
        return self


def pack_rows(rows: list, lengths: np.ndarray, width: int, fill: int, left: bool, dtype=np.int64) -> np.ndarray:
    """Rows of ints (unequal lengths <= width) -> one (len(rows), width) array, padded with `fill` on one side."""
    out = np.full((len(rows), width), fill, dtype=dtype)
    total = int(lengths.sum())
    if total:
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=dtype, count=total)
        out[_filled(lengths, width, left)] = flat
    return out


def _filled(lengths: np.ndarray, width: int, left: bool) -> np.ndarray:
    """Boolean (rows, width) mask of the positions that hold tokens (not padding)."""
    positions = np.arange(width)[None, :]
    if left:
        return positions >= (width - lengths)[:, None]
    return positions < lengths[:, None]


def attention_from_lengths(lengths: np.ndarray, width: int, left: bool) -> np.ndarray:
    return _filled(lengths, width, left).astype(np.int64)


def pack_pairs(rows: list, lengths: np.ndarray, width: int, left: bool) -> np.ndarray:
    """Rows of (start, end) offsets -> one (len(rows), width, 2) array padded with (0, 0)."""
    out = np.zeros((len(rows), width, 2), dtype=np.int64)
    total = int(lengths.sum())
    if total:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(rows)), dtype=np.int64,
                           count=2 * total)
        out[_filled(lengths, width, left)] = flat.reshape(total, 2)
    return out


def is_tensor_like(value) -> bool:
    """A NumPy array or a torch tensor (checked without importing torch)."""
    return _is_tensor_like(value)
