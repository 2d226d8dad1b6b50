"""T5 against the reference: every head, relative position buckets, T5 v1.1 / Flan-T5 (gated-gelu, untied and
unscaled head), cached decoding, generation and saving."""

import json

import pytest
import torch

import leanformers
from leanformers import AutoModel, AutoModelForSeq2SeqLM, AutoModelForTokenClassification
from leanformers.errors import ConfigError
from leanformers.layers import relative_position_bucket

from .seq2seq_parity import (check_cached_decoding, check_generate, check_head, check_saved_head, head_inputs,
                             reference_model, seq2seq_inputs)

CONFIG = dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
              relative_attention_max_distance=16, decoder_start_token_id=0)
V1_1 = dict(CONFIG, feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_decoder_layers=3)
HEADS = ["T5Model", "T5ForConditionalGeneration", "T5EncoderModel", "T5ForSequenceClassification",
         "T5ForTokenClassification", "T5ForQuestionAnswering"]
INPUTS = seq2seq_inputs(pad=0, eos=1, seq=12)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5-lm")
    return folder, reference_model("T5ForConditionalGeneration", "T5Config", folder, **CONFIG)


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "T5Config", tmp_path, **CONFIG)
    inputs, labels = head_inputs(name, INPUTS)
    check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)


@pytest.mark.parametrize("name", ["T5ForConditionalGeneration", "T5EncoderModel"])
def test_v1_1_gated_unscaled(name, tmp_path):
    reference = reference_model(name, "T5Config", tmp_path, **V1_1)
    inputs, labels = head_inputs(name, INPUTS)
    ours = check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)
    assert ours.config.is_gated_act and ours.config.dense_act_fn == "gelu_new"
    assert not ours.config.scale_decoder_outputs


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_buckets(bidirectional):
    from transformers.models.t5.modeling_t5 import T5Attention

    distance = torch.arange(-300, 300)[None, :] - torch.arange(0, 5)[:, None]
    for buckets, max_distance in ((32, 128), (8, 16)):
        expected = T5Attention._relative_position_bucket(distance, bidirectional, buckets, max_distance)
        assert torch.equal(relative_position_bucket(distance, bidirectional, buckets, max_distance), expected)


def test_hub_v1_1_checkpoint_keeps_its_own_head(tmp_path):
    """A v1.1 checkpoint as published: tie_word_embeddings false in config.json and lm_head stored apart."""
    import transformers
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(transformers.T5Config(**V1_1))
    state = {k: v.clone() for k, v in model.state_dict().items() if "embed_tokens" not in k}
    state["lm_head.weight"] = torch.randn(99, 32) * 0.05
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({**V1_1, "model_type": "t5", "is_gated_act": True}))
    reference = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    inputs, labels = head_inputs("T5ForConditionalGeneration", INPUTS)
    ours = check_head(leanformers.T5ForConditionalGeneration, tmp_path, reference, inputs, labels)
    assert ours.lm_head.weight is not ours.shared.weight and ours.encoder.embed_tokens.weight is ours.shared.weight
    torch.testing.assert_close(ours.lm_head.weight, state["lm_head.weight"])


def test_labels_and_loss(lm):
    folder, reference = lm
    ours = leanformers.T5ForConditionalGeneration.from_pretrained(folder)
    labels = INPUTS["labels"]
    assert torch.equal(ours.prepare_decoder_input_ids_from_labels(labels),
                       reference.prepare_decoder_input_ids_from_labels(labels))
    inputs = {k: INPUTS[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs, labels=labels).loss, reference(**inputs, labels=labels).loss)


def test_cached_decoding(lm):
    folder, reference = lm
    ours = leanformers.T5ForConditionalGeneration.from_pretrained(folder)
    check_cached_decoding(ours, reference, INPUTS)
    check_cached_decoding(ours, reference, seq2seq_inputs(pad=0, eos=1, seq=12, target=20, seed=3), prefill=4)


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=10),
    dict(max_new_tokens=10, num_beams=4, num_return_sequences=2, length_penalty=0.7),
    dict(max_new_tokens=8, num_beams=2, no_repeat_ngram_size=2, output_attentions=True, output_hidden_states=True),
], ids=["greedy", "beam", "beam-outputs"])
def test_generate_matches_reference(tmp_path, settings):
    # the reference sizes its generation cache by num_layers, so its decoder keeps that depth here
    reference = reference_model("T5ForConditionalGeneration", "T5Config", tmp_path, **dict(V1_1, num_decoder_layers=2))
    ours = leanformers.T5ForConditionalGeneration.from_pretrained(tmp_path)
    check_generate(ours, reference, {k: INPUTS[k] for k in ("input_ids", "attention_mask")}, **settings)


def test_saved_by_us_loads_in_reference(lm, tmp_path):
    folder, _ = lm
    check_saved_head("T5ForConditionalGeneration", folder, tmp_path, INPUTS)


def test_auto_classes_and_encoder_from_full_checkpoint(lm):
    folder, reference = lm
    assert type(AutoModelForSeq2SeqLM.from_pretrained(folder)) is leanformers.T5ForConditionalGeneration
    assert type(AutoModel.from_pretrained(folder)) is leanformers.T5Model
    assert type(AutoModelForTokenClassification.from_pretrained(folder)) is leanformers.T5ForTokenClassification
    classifier = leanformers.T5ForSequenceClassification.from_pretrained(folder)
    assert classifier.get_input_embeddings() is classifier.transformer.shared
    assert classifier.transformer.encoder.embed_tokens.weight is classifier.transformer.shared.weight
    encoder, info = leanformers.T5EncoderModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"]
    with torch.no_grad():
        torch.testing.assert_close(encoder(INPUTS["input_ids"], INPUTS["attention_mask"]).last_hidden_state,
                                   reference.encoder(INPUTS["input_ids"], INPUTS["attention_mask"]).last_hidden_state)


def test_bad_config_and_input_are_refused(lm):
    folder, _ = lm
    with pytest.raises(ConfigError, match="feed_forward_proj"):
        leanformers.T5Config(feed_forward_proj="gated-gelu-x")
    ours = leanformers.T5ForConditionalGeneration.from_pretrained(folder)
    del ours.config.decoder_start_token_id
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        ours(input_ids=INPUTS["input_ids"], labels=INPUTS["labels"])
    with pytest.raises(ValueError, match="use_cache=True"):
        ours.encoder(INPUTS["input_ids"], use_cache=True)


def test_generate_with_a_deeper_decoder(tmp_path):
    """num_decoder_layers != num_layers: cached generation equals the reference's uncached one."""
    reference = reference_model("T5ForConditionalGeneration", "T5Config", tmp_path, **V1_1)
    ours = leanformers.T5ForConditionalGeneration.from_pretrained(tmp_path)
    inputs = {k: INPUTS[k] for k in ("input_ids", "attention_mask")}
    for beams in (1, 3):
        expected = reference.generate(**inputs, max_new_tokens=8, num_beams=beams, use_cache=False)
        assert torch.equal(ours.generate(**inputs, max_new_tokens=8, num_beams=beams), expected)
