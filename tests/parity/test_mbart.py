"""mBART against the reference: pre-norm heads, language-code decoder inputs, cached decoding and generation with
a forced target language."""

import pytest
import torch

import leanformers
from leanformers import AutoModelForSeq2SeqLM
from leanformers.models.mbart import shift_tokens_right

from .seq2seq_parity import (BART_TINY, check_cached_decoding, check_generate, check_head, check_saved_head,
                             head_inputs, reference_model, seq2seq_inputs)

HEADS = ["MBartModel", "MBartForConditionalGeneration", "MBartForSequenceClassification",
         "MBartForQuestionAnswering", "MBartForCausalLM"]
INPUTS = seq2seq_inputs(pad=1, eos=2)
LANG = 97  # a language code: the last real token of every labels row


def labels_with_language():
    labels = INPUTS["labels"].clone()
    labels[0, -1], labels[1, -2], labels[1, -1] = LANG, LANG, -100
    return labels


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mbart-lm")
    return folder, reference_model("MBartForConditionalGeneration", "MBartConfig", folder, **BART_TINY,
                                   init_std=0.2, scale_embedding=True)


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(name, tmp_path):
    reference = reference_model(name, "MBartConfig", tmp_path, **BART_TINY)
    inputs, labels = head_inputs(name, INPUTS)
    check_head(getattr(leanformers, name), tmp_path, reference, inputs, labels)


def test_final_layer_norms(lm):
    folder, _ = lm
    ours = leanformers.MBartForConditionalGeneration.from_pretrained(folder)
    assert ours.model.encoder.pre_norm and hasattr(ours.model.decoder, "layer_norm")
    assert type(AutoModelForSeq2SeqLM.from_pretrained(folder)) is leanformers.MBartForConditionalGeneration


def test_labels_start_with_the_language_code(lm):
    from transformers.models.mbart.modeling_mbart import shift_tokens_right as reference_shift

    folder, reference = lm
    ours = leanformers.MBartForConditionalGeneration.from_pretrained(folder)
    labels = labels_with_language()
    expected = reference_shift(labels, 1)
    assert torch.equal(shift_tokens_right(labels, 1), expected) and bool((expected[:, 0] == LANG).all())
    assert torch.equal(ours.prepare_decoder_input_ids_from_labels(labels), expected)
    inputs = {k: INPUTS[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs, labels=labels).loss, reference(**inputs, labels=labels).loss)
        # without decoder inputs, the model reads the inputs moved right behind their last token
        torch.testing.assert_close(ours.model(**inputs).last_hidden_state, reference.model(**inputs).last_hidden_state)


def test_cached_decoding(lm):
    folder, reference = lm
    check_cached_decoding(leanformers.MBartForConditionalGeneration.from_pretrained(folder), reference, INPUTS)


@pytest.mark.parametrize("settings", [
    dict(max_new_tokens=7, decoder_start_token_id=2, forced_bos_token_id=LANG),
    dict(max_new_tokens=7, decoder_start_token_id=2, forced_bos_token_id=LANG, num_beams=3, num_return_sequences=2),
], ids=["greedy", "beam"])
def test_generate_matches_reference(lm, settings):
    folder, reference = lm
    ours = leanformers.MBartForConditionalGeneration.from_pretrained(folder)
    out = check_generate(ours, reference, {k: INPUTS[k] for k in ("input_ids", "attention_mask")}, **settings)
    assert bool((out.sequences[:, :2] == torch.tensor([2, LANG])).all())


def test_saved_by_us_loads_in_reference(lm, tmp_path):
    folder, _ = lm
    check_saved_head("MBartForConditionalGeneration", folder, tmp_path, INPUTS)
