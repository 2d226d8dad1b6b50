"""RoBERTa, XLM-RoBERTa and CamemBERT parity with the reference: every head, padding-aware positions, save/load."""

import pytest
import torch

import leanformers
from leanformers.models import roberta

from .encoder_parity import (FLAGS, check_head, check_head_mask_against_legacy, check_reload_by_reference,
                             head_inputs, head_labels, reference_cache)
from .harness import TINY, assert_outputs_close

GEN = torch.Generator()

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


@torch.no_grad()
def test_positions_skip_padding(saved):
    """Left padding, inputs_embeds (positions numbered in order) and explicit position_ids."""
    folder, reference = saved("Roberta", "ForMaskedLM")
    ours = roberta.RobertaForMaskedLM.from_pretrained(folder)
    inputs = head_inputs("RobertaForMaskedLM", reference.config)
    left = {k: v.flip(1) for k, v in inputs.items()}  # padding first: positions must not count it
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    positions = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3]])
    for kwargs in (left, {"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                   {**inputs, "position_ids": positions}, {"input_ids": inputs["input_ids"]}):
        assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


@torch.no_grad()
def test_sequence_classification_multi_label(saved):
    folder, reference = saved("Roberta", "ForSequenceClassification", problem_type="multi_label_classification")
    ours = roberta.RobertaForSequenceClassification.from_pretrained(folder)
    inputs, labels = head_inputs("RobertaModel", reference.config), torch.tensor([[1.0, 0, 1], [0, 1, 0]])
    assert_outputs_close(ours(**inputs, labels=labels), reference(**inputs, labels=labels))


@torch.no_grad()
def test_cross_attention_decoder(saved):
    folder, reference = saved("Roberta", "ForCausalLM", add_cross_attention=True)
    ours = roberta.RobertaForCausalLM.from_pretrained(folder)
    encoder_mask = torch.ones(2, 5, dtype=torch.long)
    encoder_mask[0, -2:] = 0
    kwargs = {**head_inputs("RobertaForCausalLM", reference.config), **FLAGS,
              "encoder_hidden_states": torch.randn(2, 5, TINY["hidden_size"], generator=GEN.manual_seed(2)),
              "encoder_attention_mask": encoder_mask}
    got = ours(**kwargs)
    assert len(got.cross_attentions) == TINY["num_hidden_layers"]
    assert_outputs_close(got, reference(**kwargs))


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
