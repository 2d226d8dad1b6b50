"""Special tokens, added tokens, vocabulary look-ups, decoding and `pad`, compared with the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import AddedToken

from .conftest import TEXTS, assert_same_output

KINDS = ["minilm", "gpt2", "roberta"]
NAMED = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


def _special_state(tokenizer):
    named = {name: (getattr(tokenizer, name), getattr(tokenizer, name + "_id")) for name in NAMED}
    return (named, tokenizer.special_tokens_map, tokenizer.all_special_tokens, tokenizer.all_special_ids,
            tokenizer.extra_special_tokens, tokenizer.extra_special_tokens_ids, len(tokenizer), tokenizer.vocab_size)


def _added(tokenizer):
    return {index: repr(token) for index, token in tokenizer.added_tokens_decoder.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_special_token_attributes_match_reference(pairs, kind):
    ref, ours = pairs[kind]
    assert _special_state(ours) == _special_state(ref)
    assert _added(ours) == _added(ref)
    assert ours.get_vocab() == ref.get_vocab()
    assert ours.added_tokens_encoder == ref.added_tokens_encoder
    assert (ours.model_max_length, ours.padding_side, ours.truncation_side, ours.model_input_names,
            ours.pad_token_type_id, ours.clean_up_tokenization_spaces) == \
        (ref.model_max_length, ref.padding_side, ref.truncation_side, ref.model_input_names, ref.pad_token_type_id,
         ref.clean_up_tokenization_spaces)
    for pair in (False, True):
        assert ours.num_special_tokens_to_add(pair) == ref.num_special_tokens_to_add(pair)
    assert (ours.max_len_single_sentence, ours.max_len_sentences_pair) == \
        (ref.max_len_single_sentence, ref.max_len_sentences_pair)


@pytest.mark.parametrize("kind", KINDS)
def test_add_tokens_matches_reference(fresh, kind):
    ref, ours = fresh(kind)
    for tokenizer in (ref, ours):
        tokenizer.result = [tokenizer.add_tokens(["newword", "hello", AddedToken("<ent>", lstrip=True)]),
                            tokenizer.add_tokens("anotherword"), tokenizer.add_tokens([])]
    assert ours.result == ref.result
    assert _special_state(ours) == _special_state(ref)
    assert _added(ours) == _added(ref)
    text = ["a newword here <ent> and anotherword", "hello <ent>"]
    assert_same_output(ours(text, padding=True), ref(text, padding=True))
    ids = ref(text[0])["input_ids"]
    assert ours.decode(ids) == ref.decode(ids)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("replace", [True, False])
def test_add_special_tokens_matches_reference(fresh, kind, replace):
    ref, ours = fresh(kind)
    for tokenizer in (ref, ours):
        tokenizer.result = [
            tokenizer.add_special_tokens({"pad_token": "<PAD2>", "additional_special_tokens": ["<a>", "<b>"]}),
            tokenizer.add_special_tokens({"extra_special_tokens": ["<c>", "<a>"]},
                                         replace_extra_special_tokens=replace),
            tokenizer.add_special_tokens({"cls_token": AddedToken("<CLS2>", rstrip=True)}),
            tokenizer.add_special_tokens({}),
        ]
    assert ours.result == ref.result
    assert _special_state(ours) == _special_state(ref)
    assert _added(ours) == _added(ref)
    text = ["x <a> y <CLS2>   z <PAD2>", "<c><b>"]
    options = {"padding": True, "return_special_tokens_mask": True}
    assert_same_output(ours(text, **options), ref(text, **options))
    ids = ref(text[0])["input_ids"]
    for skip in (False, True):
        assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip)
        assert ours.convert_ids_to_tokens(ids, skip_special_tokens=skip) == \
            ref.convert_ids_to_tokens(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("kind", KINDS)
def test_setting_special_tokens_by_name_and_id(fresh, kind):
    ref, ours = fresh(kind)
    for tokenizer in (ref, ours):
        tokenizer.pad_token = tokenizer.unk_token
        tokenizer.mask_token_id = 7
        tokenizer.extra_special_tokens = ["hello"]
    assert _special_state(ours) == _special_state(ref)
    assert_same_output(ours(TEXTS[:2], padding=True), ref(TEXTS[:2], padding=True))


@pytest.mark.parametrize("kind", KINDS)
def test_vocabulary_lookups_match_reference(pairs, kind):
    ref, ours = pairs[kind]
    tokens = ref.tokenize(TEXTS[1]) + ["definitely-not-a-token", ref.all_special_tokens[0]]
    assert ours.convert_tokens_to_ids(tokens) == ref.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids(tokens[0]) == ref.convert_tokens_to_ids(tokens[0])
    ids = ref(TEXTS[1])["input_ids"]
    assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids[1]) == ref.convert_ids_to_tokens(ids[1])
    assert ours.convert_ids_to_tokens(np.array(ids)) == ref.convert_ids_to_tokens(np.array(ids))
    pieces = ref.tokenize(TEXTS[0])
    assert ours.convert_tokens_to_string(pieces) == ref.convert_tokens_to_string(pieces)


@pytest.mark.parametrize("kind", KINDS)
def test_template_methods_agree_with_the_reference_call(pairs, kind):
    ref, ours = pairs[kind]
    a, b = TEXTS[0], TEXTS[1]
    ids_a = ref(a, add_special_tokens=False)["input_ids"]
    ids_b = ref(b, add_special_tokens=False)["input_ids"]
    for args, text in (((ids_a,), (a,)), ((ids_a, ids_b), (a, b))):
        full = ref(*text, return_special_tokens_mask=True, return_token_type_ids=True)
        assert ours.build_inputs_with_special_tokens(*args) == full["input_ids"]
        assert ours.get_special_tokens_mask(*args) == full["special_tokens_mask"]
        assert ours.create_token_type_ids_from_sequences(*args) == full["token_type_ids"]
        assert ours.get_special_tokens_mask(full["input_ids"], already_has_special_tokens=True) == \
            ref.get_special_tokens_mask(full["input_ids"], already_has_special_tokens=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("clean_up", [None, True, False])
def test_decode_matches_reference(pairs, kind, clean_up):
    ref, ours = pairs[kind]
    texts = [*TEXTS, f"an inline {ref.all_special_tokens[0]} token , isn't it ?"]
    batch = ref(texts, padding=True, return_tensors="pt")["input_ids"]
    for skip in (False, True):
        options = {"skip_special_tokens": skip, "clean_up_tokenization_spaces": clean_up}
        assert ours.batch_decode(batch, **options) == ref.batch_decode(batch, **options)
        assert ours.decode(batch, **options) == ref.decode(batch, **options)
        assert ours.batch_decode(batch.numpy(), **options) == ref.batch_decode(batch.numpy(), **options)
        for row in batch:
            assert ours.decode(row, **options) == ref.decode(row, **options)
            assert ours.decode(row.tolist(), **options) == ref.decode(row.tolist(), **options)
    assert ours.decode(int(batch[0, 1])) == ref.decode(int(batch[0, 1]))
    assert ours.batch_decode([]) == ref.batch_decode([])
    assert ours.batch_decode(batch[0].tolist()) == ref.batch_decode(batch[0].tolist())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options", [
    {}, {"padding": "max_length", "max_length": 40}, {"pad_to_multiple_of": 8, "padding_side": "left"},
    {"return_tensors": "pt"}, {"return_tensors": "np", "return_attention_mask": False}, {"padding": False},
])
def test_pad_matches_reference(pairs, kind, options):
    ref, ours = pairs[kind]
    rows = [dict(ref(text, return_special_tokens_mask=True)) for text in TEXTS]
    assert_same_output(ours.pad([dict(row) for row in rows], **options),
                       ref.pad([dict(row) for row in rows], **options))
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    assert_same_output(ours.pad(dict(columns), **options), ref.pad(dict(columns), **options))
    assert_same_output(ours.pad(dict(rows[0]), **options), ref.pad(dict(rows[0]), **options))


@pytest.mark.parametrize("kind", KINDS)
def test_pad_keeps_tensor_inputs_as_tensors(pairs, kind):
    ref, ours = pairs[kind]
    rows = [{key: torch.tensor(value) for key, value in ref(text).items()} for text in TEXTS[:3]]
    assert_same_output(ours.pad(rows), ref.pad(rows))
    arrays = [{key: np.array(value) for key, value in ref(text).items()} for text in TEXTS[:3]]
    assert_same_output(ours.pad(arrays), ref.pad(arrays))
