"""ModelOutput: a result that is a dataclass, a dict and a tuple at once, and the output types built on it.

Fields left at None are not keys and are skipped by index access, like in Transformers:
`out.logits`, `out["logits"]` and `out[0]` all name the first non-None field.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

Tensor = Any  # torch.Tensor; kept abstract so this module does not import torch


class ModelOutput(OrderedDict):
    """Base of all outputs. Subclasses are declared as plain dataclasses (decorated automatically)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(cls, repr=False, eq=False)

    def __post_init__(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                super().__setitem__(field.name, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return OrderedDict.__getitem__(self, key)
        return self.to_tuple()[key]

    def __setattr__(self, name, value):
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __delitem__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} fields cannot be deleted; set them to None instead.")

    def __reduce__(self):
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())

    def __repr__(self):
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
        return f"{type(self).__name__}({inner})"


def _short(value) -> str:
    shape = getattr(value, "shape", None)
    return f"Tensor{tuple(shape)}" if shape is not None else repr(value)


class BaseModelOutput(ModelOutput):
    last_hidden_state: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: Tensor = None
    pooler_output: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Tensor = None
    pooler_output: Tensor = None
    hidden_states: tuple | None = None
    past_key_values: Any = None
    attentions: tuple | None = None
    cross_attentions: tuple | None = None


class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    cross_attentions: tuple | None = None


class BaseModelOutputWithPast(ModelOutput):
    last_hidden_state: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class MaskedLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class CausalLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class CausalLMOutputWithPast(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    cross_attentions: tuple | None = None


class SequenceClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class SequenceClassifierOutputWithPast(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class TokenClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class MultipleChoiceModelOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class QuestionAnsweringModelOutput(ModelOutput):
    loss: Tensor | None = None
    start_logits: Tensor = None
    end_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class NextSentencePredictorOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class BertForPreTrainingOutput(ModelOutput):
    loss: Tensor | None = None
    prediction_logits: Tensor = None
    seq_relationship_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class AlbertForPreTrainingOutput(ModelOutput):
    loss: Tensor | None = None
    prediction_logits: Tensor = None
    sop_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class ElectraForPreTrainingOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
