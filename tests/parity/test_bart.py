"""BART against the reference: every head on padded batches, DistilBART-style shapes, cached decoding, generation,
labels and saving."""

import copy

import pytest
import torch

import leanformers
from leanformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification
from leanformers.cache import DynamicCache
from leanformers.layers import shift_tokens_right

from .seq2seq_parity import (BART_TINY, assert_same, check_cached_decoding, check_generate, check_head,
                             check_saved_head, head_inputs, reference_model, seq2seq_inputs)

HEADS = ["BartModel", "BartForConditionalGeneration", "BartForSequenceClassification", "BartForQuestionAnswering",
         "BartForCausalLM"]
INPUTS = seq2seq_inputs(pad=1, eos=2)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bart-lm")
    return folder, reference_model("BartForConditionalGeneration", "BartConfig", folder, **BART_TINY, init_std=0.2)


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "BartConfig", tmp_path, **BART_TINY)
    inputs, labels = head_inputs(name, INPUTS)
    check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)


def test_distilbart_shapes_scaled_and_untied(tmp_path):
    """DistilBART checkpoints have fewer decoder than encoder layers; scale_embedding and untied embeddings too."""
    config = dict(BART_TINY, decoder_layers=1, scale_embedding=True, tie_word_embeddings=False)
    reference = reference_model("BartForConditionalGeneration", "BartConfig", tmp_path, **config)
    inputs, labels = head_inputs("BartForConditionalGeneration", INPUTS)
    ours = check_head(leanformers.BartForConditionalGeneration, tmp_path, reference, inputs, labels)
    assert len(ours.model.decoder.layers) == 1 and ours.lm_head.weight is not ours.model.shared.weight


def test_tied_embeddings_and_keys(lm):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    shared = ours.model.shared.weight
    assert ours.lm_head.weight is shared and ours.model.encoder.embed_tokens.weight is shared
    assert ours.model.decoder.embed_tokens.weight is shared
    assert set(ours.state_dict()) == set(reference.state_dict())
    assert ours.get_encoder() is ours.model.encoder and ours.get_decoder() is ours.model.decoder
    assert ours.get_input_embeddings() is ours.model.shared and ours.get_output_embeddings() is ours.lm_head
    assert ours.model.encoder.get_input_embeddings() is ours.model.encoder.embed_tokens
    causal = leanformers.BartForCausalLM(copy.deepcopy(ours.config))
    assert causal.get_input_embeddings() is causal.model.decoder.embed_tokens is not None


def test_labels_are_shifted_like_reference(lm):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    labels = INPUTS["labels"]
    expected = reference.prepare_decoder_input_ids_from_labels(labels)
    assert torch.equal(ours.prepare_decoder_input_ids_from_labels(labels), expected)
    assert expected[-1, 0] == 2 and not bool((expected == -100).any())
    assert torch.equal(shift_tokens_right(torch.tensor([[5, -100]]), 1, 2), torch.tensor([[2, 5]]))
    with torch.no_grad():  # labels alone: the decoder inputs come from them, the loss is the reference's
        mine = ours(input_ids=INPUTS["input_ids"], attention_mask=INPUTS["attention_mask"], labels=labels)
        theirs = reference(input_ids=INPUTS["input_ids"], attention_mask=INPUTS["attention_mask"], labels=labels)
    assert_same(mine, theirs)
    assert mine.past_key_values is None


def test_cached_decoding(lm):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    check_cached_decoding(ours, reference, INPUTS)
    cache = check_cached_decoding(ours, reference, INPUTS, prefill=1, make_cache=DynamicCache)
    assert len(cache.cross_attention_cache) == 2 and all(cache.is_updated.values())


def test_encoder_outputs_reuse_and_embeddings(lm):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    inputs, _ = head_inputs("BartForConditionalGeneration", INPUTS)
    with torch.no_grad():
        full = ours(**inputs)
        encoded = ours.get_encoder()(INPUTS["input_ids"], INPUTS["attention_mask"], return_dict=False)
        reused = ours(**{**inputs, "input_ids": None}, encoder_outputs=encoded)
        torch.testing.assert_close(reused.logits, full.logits)
        embeds = {"inputs_embeds": ours.model.shared(INPUTS["input_ids"]),
                  "decoder_inputs_embeds": ours.model.shared(INPUTS["decoder_input_ids"])}
        plain = {k: inputs[k] for k in ("attention_mask", "decoder_attention_mask")}
        assert_same(ours(**plain, **embeds), reference(**plain, **embeds))


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=8),
    dict(max_new_tokens=8, num_beams=3, num_return_sequences=2, length_penalty=0.6, early_stopping=True),
    dict(max_new_tokens=8, num_beams=2, no_repeat_ngram_size=2, min_length=5, forced_bos_token_id=7),
    dict(max_new_tokens=6, num_beams=2, encoder_no_repeat_ngram_size=2, output_attentions=True,
         output_hidden_states=True),
], ids=["greedy", "beam", "beam-ngram-forced", "beam-encoder-ngram-outputs"])
def test_generate_matches_reference(lm, settings):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    inputs = {k: INPUTS[k] for k in ("input_ids", "attention_mask")}
    check_generate(ours, reference, inputs, **settings)


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=6, num_beams=2),
    dict(max_new_tokens=5, num_beams=2, cache_implementation="static"),
    dict(max_new_tokens=5, do_sample=True, top_k=5, num_return_sequences=2),
], ids=["no-mask", "static-cache", "sample"])
def test_generate_other_modes(lm, settings):
    """Inputs with padding but no attention mask, a static self-attention cache, and seeded sampling."""
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    torch.manual_seed(0)
    mine = ours.generate(INPUTS["input_ids"], **settings)
    torch.manual_seed(0)
    assert torch.equal(mine, reference.generate(INPUTS["input_ids"], **settings))


def test_generate_from_encoder_outputs(lm):
    folder, reference = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    mask = INPUTS["attention_mask"]
    with torch.no_grad():
        encoded = ours.get_encoder()(INPUTS["input_ids"], mask)
        expected = reference.generate(INPUTS["input_ids"], attention_mask=mask, max_new_tokens=6, num_beams=2)
    assert torch.equal(ours.generate(encoder_outputs=encoded, attention_mask=mask, max_new_tokens=6, num_beams=2),
                       expected)


def test_saved_by_us_loads_in_reference(lm, tmp_path):
    folder, _ = lm
    check_saved_head("BartForConditionalGeneration", folder, tmp_path, INPUTS)


def test_auto_classes_and_config(lm):
    folder, _ = lm
    assert type(AutoModelForSeq2SeqLM.from_pretrained(folder)) is leanformers.BartForConditionalGeneration
    assert type(AutoModel.from_pretrained(folder)) is leanformers.BartModel
    assert type(AutoModelForCausalLM.from_pretrained(folder)) is leanformers.BartForCausalLM
    classifier = AutoModelForSequenceClassification.from_pretrained(folder)
    assert classifier.classification_head.out_proj.out_features == 3  # BART's default num_labels, as the reference
    assert leanformers.BartForConditionalGeneration.can_generate() and not leanformers.BartModel.can_generate()


def test_resize_keeps_bias_in_step(lm):
    folder, _ = lm
    ours = leanformers.BartForConditionalGeneration.from_pretrained(folder)
    ours.resize_token_embeddings(103)
    assert ours.final_logits_bias.shape == (1, 103) and ours.lm_head.weight.shape == (103, 32)
    with torch.no_grad():
        assert ours(**head_inputs("BartForConditionalGeneration", INPUTS)[0]).logits.shape[-1] == 103


def test_bad_input_is_refused(lm):
    folder, _ = lm
    ours = leanformers.BartForSequenceClassification.from_pretrained(folder)
    ids = INPUTS["input_ids"]
    with pytest.raises(ValueError, match="same number of <eos>"):
        ours(input_ids=ids.index_put((torch.tensor([0]), torch.tensor([2])), torch.tensor(2)))
    with pytest.raises(ValueError, match="at least one <eos>"):
        ours(input_ids=torch.where(ids == 2, 5, ids))
    with pytest.raises(TypeError, match="head_mask"):
        ours(input_ids=ids, head_mask=torch.ones(4))
    with pytest.raises(ValueError, match="exactly one"):
        ours.model.encoder()
    with pytest.raises(ValueError, match="at most 64 positions"):
        ours.model.encoder(torch.ones(1, 65, dtype=torch.long))
