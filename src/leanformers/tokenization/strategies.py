"""Padding, truncation and tensor-type choices, and how the `padding`/`truncation`/`max_length` arguments of a
tokenizer call resolve into them (same rules and defaults as transformers)."""

from __future__ import annotations

import warnings
from enum import Enum

from ..errors import TokenizerError

VERY_LARGE_INTEGER = int(1e30)  # model_max_length of a tokenizer whose model has no length limit
LARGE_INTEGER = int(1e20)  # above this, model_max_length counts as "no limit"


class _Choice(str, Enum):
    """A string enum whose unknown values raise a TokenizerError listing the valid ones."""

    @classmethod
    def _missing_(cls, value):
        valid = ", ".join(repr(member.value) for member in cls)
        raise TokenizerError(f"{value!r} is not a valid {cls.__name__}: use one of {valid}.")

    def __str__(self):
        return self.value


class PaddingStrategy(_Choice):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TruncationStrategy(_Choice):
    ONLY_FIRST = "only_first"
    ONLY_SECOND = "only_second"
    LONGEST_FIRST = "longest_first"
    DO_NOT_TRUNCATE = "do_not_truncate"


class TensorType(_Choice):
    PYTORCH = "pt"
    NUMPY = "np"


def tensor_type(value) -> TensorType | None:
    """None, "pt", "np" or a TensorType -> TensorType (None stays None)."""
    if value is None or isinstance(value, TensorType):
        return value
    value = getattr(value, "value", value)
    if value in ("tf", "jax", "mlx"):
        raise TokenizerError(f"return_tensors={value!r} is not supported: leanformers returns PyTorch tensors "
                             f"(return_tensors='pt') or NumPy arrays (return_tensors='np').")
    return TensorType(value)


def _padding_strategy(padding, max_length, truncation, verbose) -> PaddingStrategy:
    if padding is False or padding is None:
        return PaddingStrategy.DO_NOT_PAD
    if padding is True:
        if verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
            warnings.warn("`max_length` is ignored when `padding=True` and there is no truncation strategy. "
                          "To pad to max length, use `padding='max_length'`.", stacklevel=4)
        return PaddingStrategy.LONGEST
    return PaddingStrategy(getattr(padding, "value", padding))


def _truncation_strategy(truncation) -> TruncationStrategy:
    if truncation is False or truncation is None:
        return TruncationStrategy.DO_NOT_TRUNCATE
    if truncation is True:
        return TruncationStrategy.LONGEST_FIRST
    return TruncationStrategy(getattr(truncation, "value", truncation))


def resolve_strategies(tokenizer, padding=False, truncation=None, max_length=None, pad_to_multiple_of=None,
                       verbose=True):
    """(padding strategy, truncation strategy, max_length) for one call, following transformers' rules:
    `max_length` alone turns truncation on; a missing `max_length` falls back to `model_max_length`, and padding or
    truncation to a length is dropped when the model has no length limit."""
    if max_length is not None and padding is False and truncation is None:
        truncation = "longest_first"
    padding_strategy = _padding_strategy(padding, max_length, truncation, verbose)
    truncation_strategy = _truncation_strategy(truncation)
    if max_length is None:
        limited = tokenizer.model_max_length <= LARGE_INTEGER
        if padding_strategy == PaddingStrategy.MAX_LENGTH:
            if limited:
                max_length = tokenizer.model_max_length
            else:
                padding_strategy = PaddingStrategy.DO_NOT_PAD
        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE:
            if limited:
                max_length = tokenizer.model_max_length
            else:
                truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
    if padding_strategy != PaddingStrategy.DO_NOT_PAD and (tokenizer.pad_token is None or tokenizer.pad_token_id < 0):
        raise TokenizerError(
            "Asking to pad but the tokenizer has no padding token. Set one, e.g. `tokenizer.pad_token = "
            "tokenizer.eos_token`, or add one with `tokenizer.add_special_tokens({'pad_token': '[PAD]'})`.")
    if (truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and padding_strategy != PaddingStrategy.DO_NOT_PAD
            and pad_to_multiple_of is not None and max_length is not None and max_length % pad_to_multiple_of):
        raise TokenizerError(
            f"Truncation and padding are both on, but the truncation length ({max_length}) is not a multiple of "
            f"pad_to_multiple_of ({pad_to_multiple_of}). Pass a max_length that is a multiple of it.")
    return padding_strategy, truncation_strategy, max_length


def padded_length(longest: int, strategy: PaddingStrategy, max_length, pad_to_multiple_of) -> int:
    """The length a batch is padded to (before rounding up to `pad_to_multiple_of`, like the Rust engine)."""
    length = max_length if strategy == PaddingStrategy.MAX_LENGTH else longest
    if pad_to_multiple_of and length % pad_to_multiple_of:
        length += pad_to_multiple_of - length % pad_to_multiple_of
    return length
