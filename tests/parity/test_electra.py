"""ELECTRA parity with the reference: discriminator, generator and every head, with and without embeddings_project."""

import pytest
import torch

import leanformers
from leanformers.models import electra

from .encoder_parity import (FLAGS, check_cross_attention, check_head, check_head_mask_against_legacy,
                             check_reload_by_reference, head_inputs, head_labels, reference_cache)
from .harness import TINY, assert_outputs_close

HEADS = {  # class -> Auto class
    "ElectraModel": "AutoModel", "ElectraForPreTraining": "AutoModelForPreTraining",
    "ElectraForMaskedLM": "AutoModelForMaskedLM", "ElectraForCausalLM": "AutoModelForCausalLM",
    "ElectraForSequenceClassification": "AutoModelForSequenceClassification",
    "ElectraForMultipleChoice": "AutoModelForMultipleChoice",
    "ElectraForTokenClassification": "AutoModelForTokenClassification",
    "ElectraForQuestionAnswering": "AutoModelForQuestionAnswering",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    get = reference_cache(tmp_path_factory, dict(TINY, embedding_size=16, attn_implementation="eager"))

    def saved(name, **extra):
        if name == "ElectraForCausalLM":
            extra.setdefault("is_decoder", True)
        return get(name, "ElectraConfig", **extra)
    return saved


@pytest.mark.parametrize("embedding_size", [16, 32])  # 16: projected up to hidden_size 32; 32: no projection
@pytest.mark.parametrize("name", HEADS)
def test_head_parity(saved, name, embedding_size):
    folder, reference = saved(name, embedding_size=embedding_size)
    model = check_head(getattr(electra, name), getattr(leanformers, HEADS[name]), folder, reference, name)
    assert hasattr(model.base_model, "embeddings_project") == (embedding_size != TINY["hidden_size"])


def test_config_defaults():
    import transformers

    ours, theirs = electra.ElectraConfig(), transformers.ElectraConfig()
    for key in ours.defaults:
        assert getattr(ours, key) == getattr(theirs, key), key


@torch.no_grad()
@pytest.mark.parametrize("summary", [dict(summary_type="mean", summary_activation="tanh"),
                                     dict(summary_type="last", summary_use_proj=False),
                                     dict(summary_type="cls_index", summary_first_dropout=0.2)])
def test_multiple_choice_summary_settings(saved, summary):
    folder, reference = saved("ElectraForMultipleChoice", **summary)
    ours = electra.ElectraForMultipleChoice.from_pretrained(folder)
    inputs = {**head_inputs("ElectraForMultipleChoice", reference.config),
              **head_labels("ElectraForMultipleChoice", reference.config)}
    assert_outputs_close(ours(**inputs), reference(**inputs))


@torch.no_grad()
def test_discriminator_loss_without_mask_and_embeds(saved):
    folder, reference = saved("ElectraForPreTraining")
    ours = electra.ElectraForPreTraining.from_pretrained(folder)
    inputs = head_inputs("ElectraForPreTraining", reference.config)
    labels = head_labels("ElectraForPreTraining", reference.config)
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    for kwargs in ({"input_ids": inputs["input_ids"], **labels}, {"inputs_embeds": embeds, **labels, **FLAGS}):
        assert_outputs_close(ours(**kwargs), reference(**kwargs))


def test_cross_attention_decoder(saved):
    folder, reference = saved("ElectraForCausalLM", add_cross_attention=True)
    check_cross_attention(electra.ElectraForCausalLM, folder, reference, "ElectraForCausalLM", TINY["hidden_size"])


@pytest.mark.parametrize("name", ["ElectraForPreTraining", "ElectraForMaskedLM", "ElectraForMultipleChoice"])
def test_saved_by_us_loads_in_reference(saved, tmp_path, name):
    folder, reference = saved(name)
    check_reload_by_reference(getattr(electra, name), folder, tmp_path, name, head_labels(name, reference.config))


def test_head_mask_matches_legacy_reference(saved):
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("ElectraModel", mask), ("ElectraForPreTraining", torch.tensor([1.0, 1.0, 0.0, 1.0])),
             ("ElectraForMaskedLM", mask), ("ElectraForCausalLM", mask), ("ElectraForMultipleChoice", mask),
             ("ElectraForSequenceClassification", mask)]
    check_head_mask_against_legacy([(getattr(electra, name), saved(name)[0], name, m) for name, m in cases])
