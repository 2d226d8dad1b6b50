"""Marian against the reference: sinusoidal positions, shared or separate embeddings, scaled embeddings, cached
decoding, generation and the checkpoint layout (no position tables in saved translation models)."""

import pytest
import torch

import leanformers
from leanformers import AutoModelForSeq2SeqLM
from leanformers.layers import sinusoidal_table

from .seq2seq_parity import (BART_TINY, assert_same, check_cached_decoding, check_generate, check_head,
                             check_saved_head, head_inputs, reference_model, seq2seq_inputs)

CONFIG = dict(BART_TINY, pad_token_id=1, decoder_start_token_id=1, eos_token_id=2, forced_eos_token_id=2,
              scale_embedding=True)
SEPARATE = dict(CONFIG, share_encoder_decoder_embeddings=False, decoder_vocab_size=77, tie_word_embeddings=False)
INPUTS = seq2seq_inputs(pad=1, eos=2)


@pytest.fixture(scope="module")
def mt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("marian-mt")
    return folder, reference_model("MarianMTModel", "MarianConfig", folder, **CONFIG, init_std=0.2)


@pytest.mark.parametrize("name", ["MarianModel", "MarianMTModel", "MarianForCausalLM"])
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "MarianConfig", tmp_path, **CONFIG)
    inputs, labels = head_inputs(name, INPUTS)
    check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)


@pytest.mark.parametrize("tied_head", [False, True])
def test_separate_source_and_target_embeddings(tmp_path, tied_head):
    config = dict(SEPARATE, tie_word_embeddings=tied_head)
    reference = reference_model("MarianMTModel", "MarianConfig", tmp_path, **config)
    inputs, labels = head_inputs("MarianMTModel", seq2seq_inputs(pad=1, eos=2, target_vocab=77))
    ours = check_head(leanformers.MarianMTModel, tmp_path, reference, inputs, labels)
    assert not hasattr(ours.model, "shared") and ours.model.decoder.embed_tokens.num_embeddings == 77
    assert ours.final_logits_bias.shape == (1, 77)
    assert (ours.lm_head.weight is ours.model.decoder.embed_tokens.weight) == tied_head
    assert ours.get_input_embeddings() is ours.model.encoder.embed_tokens
    assert ours.model.get_decoder_input_embeddings() is ours.model.decoder.embed_tokens


def test_positions_are_computed_and_frozen(mt, tmp_path):
    folder, reference = mt
    ours = leanformers.MarianMTModel.from_pretrained(folder)  # its checkpoint holds no position table
    table = ours.model.encoder.embed_positions.weight
    torch.testing.assert_close(table, reference.model.encoder.embed_positions.weight, atol=0, rtol=0)
    torch.testing.assert_close(table, sinusoidal_table(64, 32), atol=0, rtol=0)
    assert not table.requires_grad and ours.model.decoder.embed_positions.weight.shape == (64, 32)
    built = leanformers.MarianMTModel(ours.config)  # a fresh model computes them too
    torch.testing.assert_close(built.model.decoder.embed_positions.weight, table, atol=0, rtol=0)


def test_scaled_embeddings_given_as_vectors(mt):
    """Given encoder vectors are used as they are; given decoder vectors are scaled, as in the reference."""
    folder, reference = mt
    ours = leanformers.MarianMTModel.from_pretrained(folder)
    embed = ours.model.shared
    inputs = {"inputs_embeds": embed(INPUTS["input_ids"]), "decoder_inputs_embeds": embed(INPUTS["decoder_input_ids"]),
              "attention_mask": INPUTS["attention_mask"]}
    with torch.no_grad():
        assert_same(ours(**inputs), reference(**inputs))


def test_cached_decoding(mt):
    folder, reference = mt
    check_cached_decoding(leanformers.MarianMTModel.from_pretrained(folder), reference, INPUTS, prefill=3)


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=8),
    dict(max_new_tokens=8, num_beams=4, num_return_sequences=2, length_penalty=1.3),
], ids=["greedy", "beam"])
def test_generate_matches_reference(mt, settings):
    folder, reference = mt
    ours = leanformers.MarianMTModel.from_pretrained(folder)
    out = check_generate(ours, reference, {k: INPUTS[k] for k in ("input_ids", "attention_mask")}, **settings)
    assert bool((out.sequences[:, 0] == 1).all())  # translation starts from the pad token


@pytest.mark.parametrize("name", ["MarianMTModel", "MarianModel"])
def test_saved_by_us_loads_in_reference(tmp_path, name):
    folder, saved = tmp_path / "reference", tmp_path / "ours"
    reference_model(name, "MarianConfig", folder, **CONFIG)
    check_saved_head(name, folder, saved, INPUTS)
    assert type(AutoModelForSeq2SeqLM.from_pretrained(saved)) is leanformers.MarianMTModel
