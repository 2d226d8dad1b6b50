"""CTRL against the reference: every head, left padding, cached decoding and saving."""

import pytest
import torch

import leanformers
from leanformers import AutoModelForCausalLM

from .decoder_parity import check_cached_decoding, check_head, check_saved_by_us, left_padded, reference_model

CONFIG = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, dff=37, pad_token_id=0)
HEADS = ["CTRLModel", "CTRLLMHeadModel", "CTRLForSequenceClassification"]


def labels_for(name: str) -> dict:
    if name == "CTRLLMHeadModel":
        return {"labels": torch.randint(0, 99, (2, 7), generator=torch.Generator().manual_seed(1))}
    if name == "CTRLForSequenceClassification":
        return {"labels": torch.tensor([1, 0])}
    return {}


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "CTRLConfig", tmp_path, **CONFIG)
    inputs = left_padded()
    inputs["token_type_ids"] = torch.ones_like(inputs["input_ids"])  # CTRL embeds them with the word table
    check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels_for(name))


def test_cached_decoding_and_saving(tmp_path):
    reference = reference_model("CTRLLMHeadModel", "CTRLConfig", tmp_path / "ref", **CONFIG)
    ours = AutoModelForCausalLM.from_pretrained(tmp_path / "ref")
    assert type(ours) is leanformers.CTRLLMHeadModel and ours.lm_head.weight is ours.transformer.w.weight
    check_cached_decoding(ours, reference, left_padded(seq=9), prefill=6)
    check_saved_by_us(leanformers.CTRLLMHeadModel, tmp_path / "ref", tmp_path / "ours", "CTRLLMHeadModel",
                      left_padded())
