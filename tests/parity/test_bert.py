"""BERT parity: every head against the reference on tiny random checkpoints (and head_mask against 4.55.4)."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers import products
from leanformers.models import bert_heads as bert
from leanformers.packed_weights import linear as packed_weights_linear

from .encoder_parity import (check_cross_attention, check_embeds_and_positions, check_head,
                             check_head_mask_against_legacy, check_problem_type, check_reload_by_reference,
                             head_inputs, head_labels, reference_cache)
from .harness import TINY

HEADS = {  # class name -> (Auto class, config overrides)
    "BertModel": ("AutoModel", {}),
    "BertForPreTraining": ("AutoModelForPreTraining", {}),
    "BertForMaskedLM": ("AutoModelForMaskedLM", {}),
    "BertLMHeadModel": ("AutoModelForCausalLM", {"is_decoder": True}),
    "BertForNextSentencePrediction": ("AutoModelForNextSentencePrediction", {}),
    "BertForSequenceClassification": ("AutoModelForSequenceClassification", {"num_labels": 3}),
    "BertForMultipleChoice": ("AutoModelForMultipleChoice", {}),
    "BertForTokenClassification": ("AutoModelForTokenClassification", {"num_labels": 5}),
    "BertForQuestionAnswering": ("AutoModelForQuestionAnswering", {}),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(name, config overrides) -> (folder, reference model with eager attention), built once per module."""
    get = reference_cache(tmp_path_factory, dict(TINY, attn_implementation="eager"))
    return lambda name, **extra: get(name, "BertConfig", **{**HEADS[name][1], **extra})


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(saved, name):
    """Every output (loss, logits, hidden states, attentions) as object and tuple, eager and SDPA paths."""
    folder, reference = saved(name)
    assert getattr(leanformers, name) is getattr(bert, name)
    check_head(getattr(bert, name), getattr(leanformers, HEADS[name][0]), folder, reference, name)


@pytest.mark.parametrize("gelu_in_product", [True, False])
@pytest.mark.parametrize("name", ["BertModel", "BertForMaskedLM"])
def test_head_matches_reference_through_onednn(saved, name, monkeypatch, gelu_in_product):
    """The products through oneDNN on packed weights (the form taken on processors not made by Intel), the GELU
    inside them (AVX-512) or after them (AVX2)."""
    monkeypatch.setattr(products, "ONEDNN_PAYS", True)
    monkeypatch.setattr(products, "GELU_IN_PRODUCT", gelu_in_product)
    calls = []
    monkeypatch.setattr(products.packed_weights, "linear",
                        lambda *args: calls.append(args[3:]) or packed_weights_linear(*args))
    folder, reference = saved(name)
    check_head(getattr(bert, name), getattr(leanformers, HEADS[name][0]), folder, reference, name)
    assert (("gelu",) in calls) == gelu_in_product and () in calls


@pytest.mark.parametrize("name", ["BertModel", "BertForMaskedLM", "BertForSequenceClassification"])
def test_inputs_embeds_position_ids_and_defaults(saved, name):
    folder, reference = saved(name)
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    check_embeds_and_positions(getattr(bert, name).from_pretrained(folder), reference, positions)


def test_output_flags_from_config(saved):
    folder, reference = saved("BertModel")
    ours = leanformers.AutoModel.from_pretrained(folder, output_hidden_states=True, output_attentions=True)
    out = ours(**head_inputs("BertModel", reference.config))
    assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1 and len(out.attentions) == 2
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        ours()


def test_head_mask_matches_legacy_reference(saved):
    """head_mask (dropped by transformers 5) multiplies each head's attention probabilities like 4.x did."""
    layer_mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("BertModel", layer_mask), ("BertModel", torch.tensor([1.0, 1.0, 0.0, 1.0])),
             ("BertForSequenceClassification", layer_mask), ("BertForMaskedLM", layer_mask),
             ("BertLMHeadModel", layer_mask), ("BertForMultipleChoice", layer_mask)]
    check_head_mask_against_legacy([(getattr(bert, name), saved(name)[0], name, mask) for name, mask in cases])


def test_cross_attention_decoder(saved):
    folder, reference = saved("BertLMHeadModel", add_cross_attention=True)
    check_cross_attention(bert.BertLMHeadModel, folder, reference, "BertLMHeadModel", TINY["hidden_size"])


@pytest.mark.parametrize("name", HEADS)
def test_saved_by_us_loads_in_reference(saved, name, tmp_path):
    folder, reference = saved(name)
    check_reload_by_reference(getattr(bert, name), folder, tmp_path, name, head_labels(name, reference.config))


@pytest.mark.parametrize("num_labels, problem_type, dtype", [
    (1, None, torch.float32), (4, "multi_label_classification", torch.float32), (4, None, torch.float32),
    (3, None, torch.long), (3, "regression", torch.float32)])
def test_sequence_classification_losses(tmp_path, num_labels, problem_type, dtype):
    """Regression, multi-label and single-label losses; an unset problem_type is inferred and stored like 5.x."""
    check_problem_type(bert.BertForSequenceClassification, "BertForSequenceClassification", "BertConfig", tmp_path,
                       TINY, num_labels, problem_type, integer_labels=dtype == torch.long)
