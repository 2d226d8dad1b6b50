"""ModelOutput: a result that is a dataclass, a dict and a tuple at once, and the output types built on it.

Fields left at None are not keys and are skipped by index access, like in Transformers:
`out.logits`, `out["logits"]` and `out[0]` all name the first non-None field.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

Tensor = Any  # torch.Tensor; kept abstract so this module does not import torch


class ModelOutput(OrderedDict):
    """Base of all outputs. Subclasses are declared as plain dataclasses (decorated automatically)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dataclass(cls, repr=False, eq=False)
        _register_pytree(cls)  # now when torch is loaded: torch.export may build the first instance

    def __post_init__(self):
        _register_pytree(type(self))
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                super().__setitem__(field.name, value)

    def __getitem__(self, key):
        if isinstance(key, str):
            return OrderedDict.__getitem__(self, key)
        return self.to_tuple()[key]

    def __setattr__(self, name, value):
        # A field set after construction becomes a key too (appended, as in Transformers).
        if value is not None and name in _field_names(type(self)):
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __delitem__(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} fields cannot be deleted; set them to None instead.")

    def pop(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} fields cannot be popped; read them with out[key] or out.key.")

    def setdefault(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not support setdefault; set the attribute instead.")

    def update(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not support update; set each attribute instead.")

    @property
    def cache(self):
        """The key/value cache under the name newer Transformers outputs use (`past_key_values` here)."""
        return getattr(self, "past_key_values", None)

    def __reduce__(self):
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())

    def __repr__(self):
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
        return f"{type(self).__name__}({inner})"


def _field_names(cls) -> frozenset:
    names = cls.__dict__.get("_field_name_set")
    if names is None:
        names = frozenset(f.name for f in fields(cls))
        type.__setattr__(cls, "_field_name_set", names)
    return names


_PYTREE_REGISTERED: set = set()


def _register_pytree(cls):
    """Make outputs pytree nodes (needed by DDP static_graph and torch.export), without importing torch here:
    an output holding tensors means torch is already loaded."""
    torch = sys.modules.get("torch")
    if cls in _PYTREE_REGISTERED or torch is None or torch.compiler.is_compiling():
        return
    from torch.utils import _pytree

    _PYTREE_REGISTERED.add(cls)
    _pytree.register_pytree_node(
        cls, lambda out: (list(out.values()), list(out.keys())),
        lambda values, keys: cls(**dict(zip(keys, values))),
        serialized_type_name=f"{cls.__module__}.{cls.__qualname__}")


def _short(value) -> str:
    shape = getattr(value, "shape", None)
    return f"Tensor{tuple(shape)}" if shape is not None else repr(value)


def pack(output_cls, return_dict, config, **fields):
    """A model's result: the output object, or its tuple of non-None fields when return_dict (else
    config.return_dict) is False."""
    out = output_cls(**fields)
    return out if (return_dict if return_dict is not None else config.use_return_dict) else as_tuple(out, config)


def as_tuple(out: ModelOutput, config) -> tuple:
    """The tuple form of `out`; with config.torchscript a cache object becomes the nested tuples of Transformers
    4.x, which a traced module can return."""
    fields = out.to_tuple()
    if getattr(config, "torchscript", False):
        fields = tuple(_legacy_cache(v) if hasattr(v, "to_legacy_cache") else v for v in fields)
    return fields


def _legacy_cache(cache) -> tuple:
    """((keys, values) per layer), or ((keys, values, cross keys, cross values) per layer) for an encoder-decoder."""
    own = getattr(cache, "self_attention_cache", None)
    if own is None:
        return cache.to_legacy_cache()
    return tuple(mine + cross for mine, cross in zip(own.to_legacy_cache(),
                                                       cache.cross_attention_cache.to_legacy_cache()))


def extras(out) -> dict:
    """hidden_states and attentions of a base-model output, to pass on into a head's output."""
    return {"hidden_states": out.hidden_states, "attentions": out.attentions}

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


class GPT2DoubleHeadsModelOutput(ModelOutput):
    loss: Tensor | None = None
    mc_loss: Tensor | None = None
    logits: Tensor = None
    mc_logits: Tensor = None
    past_key_values: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class OpenAIGPTDoubleHeadsModelOutput(ModelOutput):
    loss: Tensor | None = None
    mc_loss: Tensor | None = None
    logits: Tensor = None
    mc_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class Seq2SeqModelOutput(ModelOutput):
    last_hidden_state: Tensor = None
    past_key_values: Any = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


class Seq2SeqLMOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    past_key_values: Any = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


class Seq2SeqSequenceClassifierOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    past_key_values: Any = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


class Seq2SeqQuestionAnsweringModelOutput(ModelOutput):
    loss: Tensor | None = None
    start_logits: Tensor = None
    end_logits: Tensor = None
    past_key_values: Any = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Tensor | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


_SEQ2SEQ_EXTRAS = ("past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                   "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")


def seq2seq_extras(out) -> dict:
    """Every field of a Seq2SeqModelOutput but its last hidden state, to pass on into a head's output."""
    return {name: getattr(out, name) for name in _SEQ2SEQ_EXTRAS}


def as_encoder_output(encoder_outputs):
    """An encoder output given to an encoder-decoder model: a tuple (last hidden state[, hidden states[,
    attentions]]) becomes a BaseModelOutput; an output object is kept."""
    if isinstance(encoder_outputs, (tuple, list)):
        parts = [*encoder_outputs, None, None]
        return BaseModelOutput(last_hidden_state=parts[0], hidden_states=parts[1], attentions=parts[2])
    return encoder_outputs


def seq2seq_output(output_cls, decoder_out, encoder_out, **fields):
    """A Seq2Seq*Output from the decoder's and the encoder's outputs (plus the head's own `fields`)."""
    return output_cls(**fields, past_key_values=decoder_out.past_key_values,
                      decoder_hidden_states=decoder_out.hidden_states, decoder_attentions=decoder_out.attentions,
                      cross_attentions=decoder_out.cross_attentions,
                      encoder_last_hidden_state=encoder_out.last_hidden_state,
                      encoder_hidden_states=encoder_out.hidden_states, encoder_attentions=encoder_out.attentions)


def stack_output(output_cls, hidden, states, weights, want_weights: bool, want_hidden: bool, **fields):
    """The output of a stack of layers: its last hidden state, plus the states entering each layer and the final
    one when `want_hidden`, and the attention weights when `want_weights`."""
    return output_cls(last_hidden_state=hidden, hidden_states=(*states, hidden) if want_hidden else None,
                      attentions=weights if want_weights else None, **fields)
