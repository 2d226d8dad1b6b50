"""Data collators: turn a list of dataset examples into one batch of tensors (padding, labels, MLM masking)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

_DONT_PAD = (False, "do_not_pad")


def _as_batch_value(values: list, first):
    """Stack one field of the features into a tensor: tensors stack, arrays stack, Python values become a tensor."""
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    if isinstance(first, np.ndarray):
        return torch.from_numpy(np.stack(values))
    return torch.tensor(values)


def default_data_collator(features: list, return_tensors: str = "pt") -> dict[str, Any]:
    """Stack equally-shaped examples; `label` / `label_ids` become `labels` (long for ints, float otherwise)."""
    if return_tensors != "pt":
        raise ConfigError("leanformers collators return torch tensors only: use return_tensors='pt'.")
    if not isinstance(features[0], Mapping):
        features = [vars(f) for f in features]
    first = features[0]
    batch = {}
    if first.get("label") is not None:
        label = first["label"].item() if isinstance(first["label"], torch.Tensor) else first["label"]
        dtype = torch.long if isinstance(label, (int, np.integer)) else torch.float
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=dtype)
    elif first.get("label_ids") is not None:
        if isinstance(first["label_ids"], torch.Tensor):
            batch["labels"] = torch.stack([f["label_ids"] for f in features])
        else:
            dtype = torch.long if isinstance(first["label_ids"][0], (int, np.integer)) else torch.float
            batch["labels"] = torch.tensor([f["label_ids"] for f in features], dtype=dtype)
    for key, value in first.items():
        if key not in ("label", "label_ids") and value is not None and not isinstance(value, str):
            batch[key] = _as_batch_value([f[key] for f in features], value)
    return batch


@dataclass
class DefaultDataCollator:
    """`default_data_collator` as an object."""

    return_tensors: str = "pt"

    def __call__(self, features, return_tensors=None):
        return default_data_collator(features, return_tensors or self.return_tensors)


def _pad(tokenizer, features, padding, max_length, pad_to_multiple_of):
    return tokenizer.pad(features, padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
                         return_tensors="pt")


@dataclass
class DataCollatorWithPadding:
    """Pad the tokenised examples of a batch to the longest one (or `max_length`) with the tokenizer's pad token."""

    tokenizer: Any
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def __call__(self, features):
        batch = _pad(self.tokenizer, features, self.padding, self.max_length, self.pad_to_multiple_of)
        for name in ("label", "label_ids"):
            if name in batch:
                batch["labels"] = batch.pop(name)
        return batch


def _pad_labels(labels: list, length: int, pad_id: int, side: str) -> list:
    rows = []
    for label in labels:
        label = label.tolist() if isinstance(label, (torch.Tensor, np.ndarray)) else list(label)
        fill = [pad_id] * (length - len(label))
        rows.append(label + fill if side == "right" else fill + label)
    return rows


@dataclass
class DataCollatorForTokenClassification:
    """Pad inputs and per-token labels together; label padding is `label_pad_token_id` (-100, ignored by the loss)."""

    tokenizer: Any
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def __call__(self, features, return_tensors=None):
        label_name = "label" if "label" in features[0] else "labels"
        labels = [f[label_name] for f in features] if label_name in features[0] else None
        inputs = [{k: v for k, v in f.items() if k != label_name} for f in features]
        batch = _pad(self.tokenizer, inputs, self.padding, self.max_length, self.pad_to_multiple_of)
        if labels is None:
            return batch
        length = batch["input_ids"].shape[1]
        rows = _pad_labels(labels, length, self.label_pad_token_id, self.tokenizer.padding_side)
        batch[label_name] = torch.tensor(rows, dtype=torch.int64)
        return batch


@dataclass
class DataCollatorForSeq2Seq:
    """Pad encoder inputs and target `labels` (with -100); builds `decoder_input_ids` when the model can."""

    tokenizer: Any
    model: Any = None
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = -100
    return_tensors: str = "pt"

    def __call__(self, features, return_tensors=None):
        label_name = "label" if "label" in features[0] else "labels"
        labels = [f[label_name] for f in features] if label_name in features[0] else None
        if labels is not None and all(label is None for label in labels):
            labels = None
        inputs = [{k: v for k, v in f.items() if k != label_name} for f in features]
        batch = _pad(self.tokenizer, inputs, self.padding, self.max_length, self.pad_to_multiple_of)
        if labels is None:
            batch["labels"] = None
            return batch
        if self.padding in _DONT_PAD:
            batch["labels"] = [list(label) for label in labels]
            return batch
        if self.padding == "max_length" and self.max_length is not None:
            length = self.max_length
        else:
            length = max(len(label) for label in labels)
        if self.pad_to_multiple_of is not None:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        rows = _pad_labels(labels, length, self.label_pad_token_id, self.tokenizer.padding_side)
        batch["labels"] = torch.tensor(rows, dtype=torch.int64)
        if self.model is not None and hasattr(self.model, "prepare_decoder_input_ids_from_labels"):
            batch["decoder_input_ids"] = self.model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        return batch


def _stack_ids(examples, tokenizer, pad_to_multiple_of):
    """Examples of token ids (lists or tensors) -> one padded (batch, length) tensor."""
    if isinstance(examples[0], (list, tuple, np.ndarray)):
        examples = [torch.tensor(e, dtype=torch.long) for e in examples]
    length = max(x.size(0) for x in examples)
    if all(x.size(0) == length for x in examples) and (pad_to_multiple_of is None or length % pad_to_multiple_of == 0):
        return torch.stack(examples, dim=0)
    if tokenizer.pad_token is None:
        raise ConfigError(f"These examples have different lengths but {type(tokenizer).__name__} has no pad token; "
                          "set tokenizer.pad_token (e.g. to tokenizer.eos_token).")
    if pad_to_multiple_of is not None and length % pad_to_multiple_of:
        length = (length // pad_to_multiple_of + 1) * pad_to_multiple_of
    result = examples[0].new_full([len(examples), length], tokenizer.pad_token_id)
    for i, example in enumerate(examples):
        if tokenizer.padding_side == "right":
            result[i, : example.shape[0]] = example
        else:
            result[i, -example.shape[0]:] = example
    return result


@dataclass
class DataCollatorForLanguageModeling:
    """Batches for language modelling. With `mlm=True`, `mlm_probability` of the tokens become targets: 80% of
    them are replaced by the mask token, 10% by a random token, 10% kept (`mask_replace_prob`,
    `random_replace_prob`). With `mlm=False` (causal LM) labels are the inputs with padding set to -100.
    `seed` gives the masking its own generator; otherwise torch's global RNG is used."""

    tokenizer: Any
    mlm: bool = True
    mlm_probability: float | None = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"
    seed: int | None = None

    def __post_init__(self):
        if self.mlm and self.tokenizer.mask_token is None:
            raise ConfigError("This tokenizer has no mask token, which masked language modelling needs; pass "
                              "mlm=False to train a causal language model instead.")
        if self.mlm and (self.mlm_probability is None or not 0 <= self.mlm_probability <= 1):
            raise ConfigError(f"mlm_probability must be within [0, 1], got {self.mlm_probability}.")
        if self.mask_replace_prob + self.random_replace_prob > 1 or min(self.mask_replace_prob,
                                                                       self.random_replace_prob) < 0:
            raise ConfigError("mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1.")
        self.generator = None
        self._generator_pid = None

    def _ensure_generator(self):
        if self.seed is None or (self.generator is not None and self._generator_pid == os.getpid()):
            return
        worker = torch.utils.data.get_worker_info()
        # each DataLoader worker gets its own stream: seed + worker id
        self.generator = torch.Generator().manual_seed(self.seed + (worker.id if worker is not None else 0))
        self._generator_pid = os.getpid()

    def __call__(self, examples, return_tensors=None):
        self._ensure_generator()
        if isinstance(examples[0], Mapping):
            batch = _pad(self.tokenizer, examples, True, None, self.pad_to_multiple_of)
        else:
            batch = {"input_ids": _stack_ids(examples, self.tokenizer, self.pad_to_multiple_of)}
        special = batch.pop("special_tokens_mask", None)
        batch.pop("offset_mapping", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.torch_mask_tokens(batch["input_ids"], special)
        else:
            labels = batch["input_ids"].clone()
            if self.tokenizer.pad_token_id is not None:
                labels[labels == self.tokenizer.pad_token_id] = -100
            batch["labels"] = labels
        return batch

    def torch_mask_tokens(self, inputs: torch.Tensor, special_tokens_mask=None):
        """Choose MLM targets and corrupt the inputs; returns (inputs, labels) with -100 on non-targets."""
        labels = inputs.clone()
        if special_tokens_mask is None:
            special_tokens_mask = [self.tokenizer.get_special_tokens_mask(row, already_has_special_tokens=True)
                                   for row in labels.tolist()]
        protected = (special_tokens_mask.bool() if isinstance(special_tokens_mask, torch.Tensor)
                     else torch.tensor(special_tokens_mask, dtype=torch.bool))
        probability = torch.full(labels.shape, self.mlm_probability).masked_fill_(protected, 0.0)
        targets = torch.bernoulli(probability, generator=self.generator).bool()
        labels[~targets] = -100
        replaced = torch.bernoulli(torch.full(labels.shape, self.mask_replace_prob),
                                   generator=self.generator).bool() & targets
        inputs[replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)
        if self.mask_replace_prob == 1 or self.random_replace_prob == 0:
            return inputs, labels
        # the random share is taken from what the mask share left over
        share = self.random_replace_prob / (1 - self.mask_replace_prob)
        randomised = torch.bernoulli(torch.full(labels.shape, share), generator=self.generator).bool() \
            & targets & ~replaced
        words = torch.randint(len(self.tokenizer), labels.shape, dtype=torch.long, generator=self.generator)
        inputs[randomised] = words[randomised]
        return inputs, labels


class RemoveColumnsCollator:
    """Wrap a collator so that example fields the model's forward() does not take are dropped first."""

    def __init__(self, data_collator, signature_columns, on_removed=None):
        self.data_collator = data_collator
        self.signature_columns = set(signature_columns)
        self.on_removed = on_removed

    def _keep(self, feature):
        if not isinstance(feature, Mapping):
            return feature
        removed = [k for k in feature if k not in self.signature_columns]
        if removed and self.on_removed is not None:
            self.on_removed(removed)
        return {k: v for k, v in feature.items() if k in self.signature_columns}

    def __call__(self, features):
        return self.data_collator([self._keep(f) for f in features])
