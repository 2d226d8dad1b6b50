"""FlauBERT: XLM's encoder and heads (xlm.py, xlm_heads.py) with the LayerNorms before the sublayers when
`pre_norm` and LayerDrop (`layerdrop`) in training; only the config and the class names are its own."""

from __future__ import annotations

from .xlm import XLM_DEFAULTS, XLMConfig, XLMModel, XLMPreTrainedModel, XLMWithLMHeadModel
from .xlm_heads import (XLMForMultipleChoice, XLMForQuestionAnswering, XLMForQuestionAnsweringOutput,
                        XLMForQuestionAnsweringSimple, XLMForSequenceClassification, XLMForTokenClassification)

__all__ = ["FlaubertConfig", "FlaubertModel", "FlaubertWithLMHeadModel", "FlaubertForSequenceClassification",
           "FlaubertForTokenClassification", "FlaubertForMultipleChoice", "FlaubertForQuestionAnsweringSimple",
           "FlaubertForQuestionAnswering", "FlaubertForQuestionAnsweringOutput"]


class FlaubertConfig(XLMConfig):
    """XLM's settings plus `pre_norm` and `layerdrop`. Unlike XLM, the bos/eos/pad indices are fields of their own
    (not aliases of the token ids) and no eos_token_id is set."""

    model_type = "flaubert"
    attribute_map = {"hidden_size": "emb_dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers",
                     "n_words": "vocab_size"}
    defaults = {**XLM_DEFAULTS, "pre_norm": False, "layerdrop": 0.0, "bos_index": 0, "eos_index": 1,
                "pad_index": 2}


class FlaubertPreTrainedModel(XLMPreTrainedModel):
    config_class = FlaubertConfig


class FlaubertModel(FlaubertPreTrainedModel, XLMModel):
    pass


class FlaubertWithLMHeadModel(FlaubertPreTrainedModel, XLMWithLMHeadModel):
    model_class = FlaubertModel


def _flaubert(head):
    """The FlauBERT class of an XLM head: the same head over a FlaubertModel."""
    name = head.__name__.replace("XLM", "Flaubert")
    return type(name, (head,), {"config_class": FlaubertConfig, "encoder_class": FlaubertModel,
                                "__module__": __name__, "__qualname__": name, "__doc__": head.__doc__})


FlaubertForSequenceClassification = _flaubert(XLMForSequenceClassification)
FlaubertForTokenClassification = _flaubert(XLMForTokenClassification)
FlaubertForMultipleChoice = _flaubert(XLMForMultipleChoice)
FlaubertForQuestionAnsweringSimple = _flaubert(XLMForQuestionAnsweringSimple)
FlaubertForQuestionAnswering = _flaubert(XLMForQuestionAnswering)
FlaubertForQuestionAnsweringOutput = XLMForQuestionAnsweringOutput
