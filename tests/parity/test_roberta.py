"""RoBERTa, XLM-RoBERTa and CamemBERT parity with the reference: every head, padding-aware positions, save/load."""

import pytest
import torch

import leanformers
from leanformers.models import roberta

from .encoder_parity import (check_cross_attention, check_embeds_and_positions, check_head,
                             check_head_mask_against_legacy, check_reload_by_reference, head_inputs, head_labels,
                             reference_cache)
from .harness import TINY, assert_outputs_close

FAMILIES = ("Roberta", "XLMRoberta", "Camembert")
HEADS = {  # class name suffix -> Auto class
    "Model": "AutoModel", "ForMaskedLM": "AutoModelForMaskedLM", "ForCausalLM": "AutoModelForCausalLM",
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForMultipleChoice": "AutoModelForMultipleChoice", "ForTokenClassification": "AutoModelForTokenClassification",
    "ForQuestionAnswering": "AutoModelForQuestionAnswering",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    get = reference_cache(tmp_path_factory, dict(TINY, attn_implementation="eager"))

    def saved(family, head, **extra):
        if head == "ForCausalLM":
            extra.setdefault("is_decoder", True)
        if head in ("ForSequenceClassification", "ForTokenClassification"):
            extra.setdefault("num_labels", 3)
        return get(family + head, family + "Config", **extra)
    return saved


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("family", FAMILIES)
def test_head_parity(saved, family, head):
    folder, reference = saved(family, head)
    model = check_head(getattr(roberta, family + head), getattr(leanformers, HEADS[head]), folder, reference,
                       family + head)
    assert model.config.model_type == reference.config.model_type


@pytest.mark.parametrize("family", FAMILIES)
def test_config_defaults_and_pretraining_auto(saved, family):
    ours, theirs = getattr(roberta, family + "Config")(), _reference_config(family)
    for key in ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "hidden_act", "layer_norm_eps",
                "type_vocab_size", "max_position_embeddings", "tie_word_embeddings", "classifier_dropout"):
        assert getattr(ours, key) == getattr(theirs, key), key
    folder, _ = saved(family, "ForMaskedLM")
    assert type(leanformers.AutoModelForPreTraining.from_pretrained(folder)).__name__ == family + "ForMaskedLM"


def _reference_config(family):
    import transformers

    return getattr(transformers, family + "Config")()


def test_positions_skip_padding(saved):
    """Left padding, inputs_embeds (positions numbered in order) and explicit position_ids."""
    folder, reference = saved("Roberta", "ForMaskedLM")
    left = {k: v.flip(1) for k, v in head_inputs("RobertaForMaskedLM", reference.config).items()}  # padding first
    positions = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3]])
    check_embeds_and_positions(roberta.RobertaForMaskedLM.from_pretrained(folder), reference, positions, left)


@torch.no_grad()
def test_sequence_classification_multi_label(saved):
    folder, reference = saved("Roberta", "ForSequenceClassification", problem_type="multi_label_classification")
    ours = roberta.RobertaForSequenceClassification.from_pretrained(folder)
    inputs, labels = head_inputs("RobertaModel", reference.config), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert_outputs_close(ours(**inputs, labels=labels), reference(**inputs, labels=labels))


def test_cross_attention_decoder(saved):
    folder, reference = saved("Roberta", "ForCausalLM", add_cross_attention=True)
    check_cross_attention(roberta.RobertaForCausalLM, folder, reference, "RobertaForCausalLM", TINY["hidden_size"])


@pytest.mark.parametrize("family, head", [("Roberta", "ForMaskedLM"), ("Roberta", "ForCausalLM"),
                                          ("XLMRoberta", "ForSequenceClassification"),
                                          ("Camembert", "ForMultipleChoice")])
def test_saved_by_us_loads_in_reference(saved, tmp_path, family, head):
    folder, reference = saved(family, head)
    name = family + head
    check_reload_by_reference(getattr(roberta, name), folder, tmp_path, name, head_labels(name, reference.config))


def test_head_mask_matches_legacy_reference(saved):
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("Roberta", "Model", mask), ("Roberta", "ForMaskedLM", torch.tensor([1.0, 1.0, 0.0, 1.0])),
             ("Roberta", "ForCausalLM", mask), ("XLMRoberta", "ForSequenceClassification", mask),
             ("Camembert", "ForMultipleChoice", mask), ("Roberta", "ForTokenClassification", mask),
             ("Roberta", "ForQuestionAnswering", mask)]
    check_head_mask_against_legacy([(getattr(roberta, family + head), saved(family, head)[0], family + head, m)
                                    for family, head, m in cases])
