"""OpenAI GPT against the reference: every head, padding on either side, saving, and the tied-weight direction."""

import pytest
import torch

import leanformers
from leanformers import AutoModelForCausalLM

from .decoder_parity import check_head, check_saved_by_us, double_heads_inputs, left_padded, reference_model

CONFIG = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0)
HEADS = ["OpenAIGPTModel", "OpenAIGPTLMHeadModel", "OpenAIGPTForSequenceClassification"]


def right_padded():
    inputs = left_padded(pad=0)
    inputs["attention_mask"][1, -2:] = 0
    inputs["input_ids"][1, -2:] = 0
    return inputs


def labels_for(name: str) -> dict:
    if name == "OpenAIGPTLMHeadModel":
        return {"labels": torch.randint(0, 99, (2, 7), generator=torch.Generator().manual_seed(1))}
    if name == "OpenAIGPTForSequenceClassification":
        return {"labels": torch.tensor([1, 0])}
    return {}


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("padding", [left_padded, right_padded])
def test_head_matches_reference(name, padding, tmp_path):
    reference = reference_model(name, "OpenAIGPTConfig", tmp_path, **CONFIG)
    check_head(getattr(leanformers, name), tmp_path, reference, padding(), labels_for(name))


def test_double_heads_and_tying(tmp_path):
    reference = reference_model("OpenAIGPTDoubleHeadsModel", "OpenAIGPTConfig", tmp_path, **CONFIG)
    ours = check_head(leanformers.OpenAIGPTDoubleHeadsModel, tmp_path, reference, double_heads_inputs())
    assert ours.transformer.tokens_embed.weight is ours.lm_head.weight


def test_saved_by_us_loads_in_reference(tmp_path):
    reference_model("OpenAIGPTLMHeadModel", "OpenAIGPTConfig", tmp_path / "ref", **CONFIG)
    check_saved_by_us(leanformers.OpenAIGPTLMHeadModel, tmp_path / "ref", tmp_path / "ours", "OpenAIGPTLMHeadModel",
                      right_padded())
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "ours")) is leanformers.OpenAIGPTLMHeadModel
    assert leanformers.OpenAIGPTLMHeadModel.can_generate()
