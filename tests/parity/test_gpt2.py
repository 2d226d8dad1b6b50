"""GPT-2 against the reference: every head, left padding, cached decoding, saving, and the Conv1D layout."""

import pytest
import torch

import leanformers
from leanformers import AutoModel, AutoModelForCausalLM
from leanformers.cache import DynamicCache, StaticCache
from leanformers.errors import ConfigError

from .decoder_parity import (assert_same, check_cached_decoding, check_head, check_saved_by_us, double_heads_inputs,
                             left_padded, reference_model)

CONFIG = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
              eos_token_id=2)
HEADS = ["GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification", "GPT2ForTokenClassification",
         "GPT2ForQuestionAnswering"]


def labels_for(name: str, batch: int = 2, seq: int = 7) -> dict:
    g = torch.Generator().manual_seed(1)
    if name == "GPT2LMHeadModel":
        labels = torch.randint(0, 99, (batch, seq), generator=g)
        labels[:, :2] = -100
        return {"labels": labels}
    if name == "GPT2ForSequenceClassification":
        return {"labels": torch.tensor([0, 1])}
    if name == "GPT2ForTokenClassification":
        return {"labels": torch.randint(0, 2, (batch, seq), generator=g)}
    if name == "GPT2ForQuestionAnswering":
        return {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])}
    return {}


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2-lm")
    return folder, reference_model("GPT2LMHeadModel", "GPT2Config", folder, **CONFIG)


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "GPT2Config", tmp_path, **CONFIG)
    check_head(getattr(leanformers, name), tmp_path, reference, left_padded(), labels_for(name))


def test_double_heads(tmp_path):
    reference = reference_model("GPT2DoubleHeadsModel", "GPT2Config", tmp_path, **CONFIG)
    ours = check_head(leanformers.GPT2DoubleHeadsModel, tmp_path, reference, double_heads_inputs())
    assert ours.can_generate() and ours.multiple_choice_head.summary.weight.shape == (1, 32)


def test_conv1d_layout_and_tied_head(lm):
    folder, reference = lm
    ours = leanformers.GPT2LMHeadModel.from_pretrained(folder)
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        assert value.shape == theirs[key].shape, key
    assert ours.transformer.h[0].attn.c_attn.weight.shape == (32, 96)  # (in, out), as checkpoints store it
    assert ours.lm_head.weight is ours.transformer.wte.weight
    assert torch.equal(ours.lm_head.weight, reference.lm_head.weight)
    # Conv1D weights stored column-major on CPU (faster decoding steps), same shape and values as the checkpoint
    c_fc = ours.transformer.h[0].mlp.c_fc.weight
    assert c_fc.t().is_contiguous() and torch.equal(c_fc, reference.transformer.h[0].mlp.c_fc.weight)


def test_cached_decoding_left_padded(lm):
    folder, reference = lm
    ours = leanformers.GPT2LMHeadModel.from_pretrained(folder)
    inputs = left_padded(seq=9)
    check_cached_decoding(ours, reference, inputs, prefill=5)
    check_cached_decoding(ours, reference, inputs, prefill=5, make_cache=lambda: StaticCache(ours.config, 16))


def test_cache_positions_default_to_cache_length(lm):
    """Without position_ids, new tokens continue from the cached length (as the reference does)."""
    folder, reference = lm
    ours = leanformers.GPT2LMHeadModel.from_pretrained(folder)
    ids = left_padded(pad=0)["input_ids"]
    with torch.no_grad():
        full = ours(ids).logits
        first = ours(ids[:, :4], use_cache=True)
        legacy = first.past_key_values.to_legacy_cache()  # ((keys, values) per layer), the older format
        second = ours(ids[:, 4:], past_key_values=first.past_key_values)
        torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), full, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours(ids[:, 4:], past_key_values=legacy).logits, second.logits)


def test_logits_to_keep_and_inputs_embeds(lm):
    folder, reference = lm
    ours = leanformers.GPT2LMHeadModel.from_pretrained(folder)
    inputs = left_padded()
    with torch.no_grad():
        full = ours(**inputs).logits
        torch.testing.assert_close(ours(**inputs, logits_to_keep=1).logits, full[:, -1:])
        torch.testing.assert_close(ours(**inputs, logits_to_keep=torch.tensor([0, 3])).logits, full[:, [0, 3]])
        embeds = ours.transformer.wte(inputs["input_ids"])
        torch.testing.assert_close(ours(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits, full)
        assert_same(ours(inputs_embeds=embeds, use_cache=False), reference(inputs_embeds=embeds, use_cache=False))


def test_auto_classes_and_generation_flags(lm):
    folder, _ = lm
    assert type(AutoModelForCausalLM.from_pretrained(folder)) is leanformers.GPT2LMHeadModel
    assert type(AutoModel.from_pretrained(folder)) is leanformers.GPT2Model
    assert leanformers.GPT2LMHeadModel.can_generate() and not leanformers.GPT2Model.can_generate()


def test_saved_by_us_loads_in_reference(lm, tmp_path):
    folder, _ = lm
    check_saved_by_us(leanformers.GPT2LMHeadModel, folder, tmp_path, "GPT2LMHeadModel", left_padded())


def test_layer_scaling_options(tmp_path):
    config = dict(CONFIG, scale_attn_by_inverse_layer_idx=True, scale_attn_weights=False, reorder_and_upcast_attn=True)
    reference = reference_model("GPT2LMHeadModel", "GPT2Config", tmp_path, **config)
    check_head(leanformers.GPT2LMHeadModel, tmp_path, reference, left_padded())


def test_bad_input_is_refused(lm):
    folder, _ = lm
    ours = leanformers.GPT2LMHeadModel.from_pretrained(folder)
    ids = left_padded()["input_ids"]
    with pytest.raises(TypeError, match="head_mask"):
        ours(ids, head_mask=torch.ones(4))
    with pytest.raises(ValueError, match="exactly one"):
        ours()
    cache = DynamicCache()
    ours(ids, past_key_values=cache)
    with pytest.raises(ValueError, match="attention_mask covers"):
        ours(ids[:, :1], past_key_values=cache, attention_mask=torch.ones(2, 1))
    with pytest.raises(ValueError, match="max_position_embeddings=64"):
        ours(torch.ones(1, 65, dtype=torch.long))
    with pytest.raises(ConfigError, match="add_cross_attention"):
        leanformers.GPT2Model(leanformers.GPT2Config(n_embd=32, n_layer=1, n_head=4, add_cross_attention=True))
