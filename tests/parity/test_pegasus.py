"""Pegasus against the reference: pre-norm heads with sinusoidal positions, cached decoding, generation, saving."""

import pytest
import torch

import leanformers

from .seq2seq_parity import (BART_TINY, check_cached_decoding, check_generate, check_head, check_saved_head,
                             head_inputs, reference_model, seq2seq_inputs)

CONFIG = dict(BART_TINY, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=1,
              scale_embedding=True)
INPUTS = seq2seq_inputs(pad=0, eos=1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pegasus-lm")
    return folder, reference_model("PegasusForConditionalGeneration", "PegasusConfig", folder, **CONFIG,
                                   init_std=0.2)


@pytest.mark.parametrize("name", ["PegasusModel", "PegasusForConditionalGeneration", "PegasusForCausalLM"])
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "PegasusConfig", tmp_path, **CONFIG)
    inputs, labels = head_inputs(name, INPUTS)
    ours = check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)
    positions = ours.base_model.decoder.embed_positions
    assert not positions.weight.requires_grad and type(positions).__name__ == "PegasusSinusoidalPositionalEmbedding"


def test_pre_norm_layout(lm):
    folder, reference = lm
    ours = leanformers.PegasusForConditionalGeneration.from_pretrained(folder)
    assert set(ours.state_dict()) == set(reference.state_dict())
    assert not hasattr(ours.model.encoder, "layernorm_embedding") and hasattr(ours.model.encoder, "layer_norm")
    assert ours.lm_head.weight is ours.model.shared.weight


def test_cached_decoding(lm):
    folder, reference = lm
    check_cached_decoding(leanformers.PegasusForConditionalGeneration.from_pretrained(folder), reference, INPUTS)


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=8),
    dict(max_new_tokens=8, num_beams=3, length_penalty=0.8, no_repeat_ngram_size=3),
], ids=["greedy", "beam"])
def test_generate_matches_reference(lm, settings):
    folder, reference = lm
    ours = leanformers.PegasusForConditionalGeneration.from_pretrained(folder)
    check_generate(ours, reference, {k: INPUTS[k] for k in ("input_ids", "attention_mask")}, **settings)


def test_saved_by_us_loads_in_reference(lm, tmp_path):
    folder, _ = lm
    ours, _ = check_saved_head("PegasusForConditionalGeneration", folder, tmp_path, INPUTS)
    assert torch.equal(ours.prepare_decoder_input_ids_from_labels(INPUTS["decoder_input_ids"])[:, 0],
                       torch.zeros(2, dtype=torch.long))
