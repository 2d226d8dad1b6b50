"""`tokenizer.pad`: pad inputs that are already token ids (a collate function's job), like transformers."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import TokenizerError
from .encoding import BatchEncoding, is_tensor_like
from .strategies import PaddingStrategy, resolve_strategies


def _to_lists(value):
    return value.tolist() if hasattr(value, "tolist") else value


def pad_inputs(tokenizer, encoded_inputs, padding, max_length, pad_to_multiple_of, padding_side,
               return_attention_mask, return_tensors, verbose) -> BatchEncoding:
    """Pad one example or a batch (dict of lists, or list of dicts) with the tokenizer's pad token and side."""
    if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
        encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0].keys()}
    main = tokenizer.model_input_names[0]
    if main not in encoded_inputs:
        raise TokenizerError(f"pad() needs the field '{main}' in its input; got {list(encoded_inputs.keys())}. "
                             f"Pass the output of the tokenizer (or a list of such outputs).")
    encoded_inputs = dict(encoded_inputs)
    required = encoded_inputs[main]
    if required is None or len(required) == 0:
        if return_attention_mask:
            encoded_inputs["attention_mask"] = []
        return BatchEncoding(encoded_inputs)
    first = required[0]
    if isinstance(first, (list, tuple)):
        first = next((row[0] for row in required if len(row)), first)
    if is_tensor_like(first) or is_tensor_like(required):
        if return_tensors is None:
            return_tensors = "np" if type(first).__module__ == "numpy" else "pt"
        encoded_inputs = {key: _to_lists(value) if not isinstance(value, list) else [_to_lists(v) for v in value]
                          for key, value in encoded_inputs.items()}
    strategy, _, max_length = resolve_strategies(tokenizer, padding=padding, max_length=max_length, verbose=verbose)
    required = encoded_inputs[main]
    if required and not isinstance(required[0], (list, tuple)):
        row = _pad_row(tokenizer, encoded_inputs, max_length, strategy, pad_to_multiple_of, padding_side,
                       return_attention_mask)
        return BatchEncoding(row, tensor_type=return_tensors)
    size = len(required)
    if any(len(value) != size for value in encoded_inputs.values()):
        raise TokenizerError("pad() got fields with different batch sizes: every field needs one row per example.")
    if strategy == PaddingStrategy.LONGEST:
        max_length = max(len(row) for row in required)
        strategy = PaddingStrategy.MAX_LENGTH
    out = {}
    for index in range(size):
        row = _pad_row(tokenizer, {key: value[index] for key, value in encoded_inputs.items()}, max_length,
                       strategy, pad_to_multiple_of, padding_side, return_attention_mask)
        for key, value in row.items():
            out.setdefault(key, []).append(value)
    return BatchEncoding(out, tensor_type=return_tensors)


def _pad_row(tokenizer, inputs: dict, max_length, strategy, pad_to_multiple_of, padding_side, return_attention_mask):
    """One example padded on the tokenizer's side; attention_mask added when the model takes one."""
    if return_attention_mask is None:
        return_attention_mask = "attention_mask" in tokenizer.model_input_names
    main = tokenizer.model_input_names[0]
    required = list(inputs[main])
    if strategy == PaddingStrategy.LONGEST:
        max_length = len(required)
    if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
        max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
    inputs = {key: list(value) if isinstance(value, (list, tuple)) else value for key, value in inputs.items()}
    if return_attention_mask and "attention_mask" not in inputs:
        inputs["attention_mask"] = [1] * len(required)
    if strategy == PaddingStrategy.DO_NOT_PAD or max_length is None or len(required) >= max_length:
        return inputs
    gap = max_length - len(required)
    side = padding_side or tokenizer.padding_side
    if side not in ("right", "left"):
        raise TokenizerError(f"padding_side must be 'right' or 'left', not {side!r}.")
    fills = {main: tokenizer.pad_token_id, "token_type_ids": tokenizer.pad_token_type_id, "special_tokens_mask": 1}
    if return_attention_mask:
        fills["attention_mask"] = 0
    for key, fill in fills.items():
        if key in inputs:
            inputs[key] = inputs[key] + [fill] * gap if side == "right" else [fill] * gap + inputs[key]
    return inputs
