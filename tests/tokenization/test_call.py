"""Tokenizer calls compared field by field with the reference transformers: single texts, pairs, batches,
pre-split words, every padding and truncation option, overflow with stride, and the optional outputs."""

from __future__ import annotations

import pytest

from .conftest import TEXTS, assert_same_output, same_or_both_fail

PAIR_A = ["How old are you?", "What is the capital city of France, and why is it famous?", "Hi"]
PAIR_B = ["I am six years old and I live in a very small town.", "Paris.", "A reply that runs on for a while."]
WORDS = [["Hello", "wonderful", "world", "café"], ["naïve", "tokenization", "😀"], ["x"]]

INPUTS = {
    "single": ((TEXTS[0],), {}),
    "pair": ((PAIR_A[1], PAIR_B[0]), {}),
    "batch": ((TEXTS,), {}),
    "batch_pairs": ((PAIR_A, PAIR_B), {}),
    "tuple_pairs": ((list(zip(PAIR_A, PAIR_B)),), {}),
    "words": ((WORDS[0],), {"is_split_into_words": True}),
    "batch_words": ((WORDS,), {"is_split_into_words": True}),
    "batch_word_pairs": ((WORDS, WORDS[::-1]), {"is_split_into_words": True}),
}

OPTIONS = {
    "plain": {},
    "no_specials": {"add_special_tokens": False},
    "pad": {"padding": True},
    "pad_left": {"padding": "longest", "padding_side": "left"},
    "pad_max": {"padding": "max_length", "max_length": 40},
    "pad_multiple": {"padding": True, "pad_to_multiple_of": 8},
    "trunc": {"truncation": True, "max_length": 9},
    "max_length_only": {"max_length": 7},
    "trunc_default_length": {"truncation": True},
    "trunc_pad": {"truncation": True, "max_length": 16, "padding": "max_length"},
    "extras": {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_length": True,
               "return_token_type_ids": True},
    "no_mask": {"return_attention_mask": False, "return_token_type_ids": False},
    "overflow": {"truncation": True, "max_length": 8, "stride": 2, "return_overflowing_tokens": True},
    "overflow_pad": {"truncation": "longest_first", "max_length": 10, "stride": 3, "padding": True,
                     "return_overflowing_tokens": True, "return_offsets_mapping": True},
    "pt": {"padding": True, "return_tensors": "pt"},
    "np_left": {"padding": True, "padding_side": "left", "return_tensors": "np", "return_special_tokens_mask": True,
                "return_offsets_mapping": True, "return_length": True},
    "pt_max_multiple": {"padding": "max_length", "max_length": 30, "pad_to_multiple_of": 16, "return_tensors": "pt",
                        "return_token_type_ids": True},
    "pt_trunc": {"truncation": True, "max_length": 6, "padding": True, "return_tensors": "pt"},
}

PAIR_OPTIONS = {
    "only_first": {"truncation": "only_first", "max_length": 14},
    "only_second": {"truncation": "only_second", "max_length": 14},
    "longest_first": {"truncation": "longest_first", "max_length": 12, "padding": True},
    "only_second_overflow": {"truncation": "only_second", "max_length": 16, "stride": 2,
                             "return_overflowing_tokens": True, "padding": True},
    "only_first_overflow_pt": {"truncation": "only_first", "max_length": 18, "stride": 1, "padding": True,
                               "return_overflowing_tokens": True, "return_tensors": "pt"},
    "left_truncation_side": {"truncation": "longest_first", "max_length": 12, "_truncation_side": "left"},
}

CASES = [(kind, inputs, option) for kind in ("minilm", "gpt2", "roberta") for inputs in INPUTS for option in OPTIONS]
PAIR_CASES = [(kind, inputs, option) for kind in ("minilm", "roberta")
              for inputs in ("pair", "batch_pairs", "batch_word_pairs") for option in PAIR_OPTIONS]


def _call(tokenizer, inputs, options):
    args, fixed = INPUTS[inputs]
    options = dict(options)
    side = options.pop("_truncation_side", None)
    if side is not None:
        tokenizer.truncation_side = side
    try:
        return tokenizer(*args, **fixed, **options)
    finally:
        tokenizer.truncation_side = "right"


@pytest.mark.parametrize("kind, inputs, option", CASES)
def test_call_matches_reference(pairs, kind, inputs, option):
    ref, ours = pairs[kind]
    same_or_both_fail(lambda: _call(ours, inputs, OPTIONS[option]), lambda: _call(ref, inputs, OPTIONS[option]))


@pytest.mark.parametrize("kind, inputs, option", PAIR_CASES)
def test_pair_truncation_matches_reference(pairs, kind, inputs, option):
    ref, ours = pairs[kind]
    same_or_both_fail(lambda: _call(ours, inputs, PAIR_OPTIONS[option]),
                      lambda: _call(ref, inputs, PAIR_OPTIONS[option]))


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_alignment_methods_match_reference(pairs, kind):
    ref, ours = pairs[kind]
    args = (PAIR_A, PAIR_B)
    theirs, mine = ref(*args, padding=True, return_tensors="pt"), ours(*args, padding=True, return_tensors="pt")
    for row in range(len(PAIR_A)):
        length = len(theirs.encodings[row])
        for token in range(length):
            assert mine.token_to_chars(row, token) == theirs.token_to_chars(row, token)
            assert mine.token_to_word(row, token) == theirs.token_to_word(row, token)
            assert mine.token_to_sequence(row, token) == theirs.token_to_sequence(row, token)
        for sequence, text in ((0, PAIR_A[row]), (1, PAIR_B[row])):
            for char in range(len(text)):
                assert mine.char_to_token(row, char, sequence) == theirs.char_to_token(row, char, sequence)
                assert mine.char_to_word(row, char, sequence) == theirs.char_to_word(row, char, sequence)
            for word in range(4):
                span = theirs.word_to_tokens(row, word, sequence)
                assert mine.word_to_tokens(row, word, sequence) == span
                if span is not None:
                    assert mine.word_to_chars(row, word, sequence) == theirs.word_to_chars(row, word, sequence)
    single_ref, single_ours = ref(TEXTS[0]), ours(TEXTS[0])
    assert single_ours.char_to_token(3) == single_ref.char_to_token(3)
    assert single_ours.token_to_chars(2) == single_ref.token_to_chars(2)
    assert single_ours.word_to_tokens(1) == single_ref.word_to_tokens(1)


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_encode_and_tokenize_match_reference(pairs, kind):
    ref, ours = pairs[kind]
    for text in TEXTS:
        assert ours.encode(text) == ref.encode(text)
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        assert ours.encode(text, PAIR_B[0], truncation=True, max_length=12) == \
            ref.encode(text, PAIR_B[0], truncation=True, max_length=12)
        assert ours.tokenize(text) == ref.tokenize(text)
        assert ours.tokenize(text, PAIR_A[0], add_special_tokens=True) == \
            ref.tokenize(text, PAIR_A[0], add_special_tokens=True)
    assert ours.encode(TEXTS[:2], padding=True, return_tensors="pt").tolist() == \
        ref.encode(TEXTS[:2], padding=True, return_tensors="pt").tolist()


@pytest.mark.parametrize("kind", ["minilm", "roberta"])
def test_legacy_encode_plus_names_match_the_call(pairs, kind):
    ref, ours = pairs[kind]
    assert_same_output(ours.encode_plus(PAIR_A[0], PAIR_B[0], return_offsets_mapping=True),
                       ref(PAIR_A[0], PAIR_B[0], return_offsets_mapping=True))
    assert_same_output(ours.batch_encode_plus(list(zip(PAIR_A, PAIR_B)), padding=True, return_tensors="np"),
                       ref(PAIR_A, PAIR_B, padding=True, return_tensors="np"))


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_text_target_gives_labels_like_the_reference(pairs, kind):
    ref, ours = pairs[kind]
    options = {"text_target": PAIR_B, "padding": True, "truncation": True, "max_length": 10}
    assert_same_output(ours(PAIR_A, **options), ref(PAIR_A, **options))
    assert_same_output(ours(text_target=PAIR_B[0]), ref(text_target=PAIR_B[0]))


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_split_special_tokens_matches_reference(pairs, kind):
    ref, ours = pairs[kind]
    text = f"a {ref.all_special_tokens[0]} b {ref.all_special_tokens[-1]}"
    for split in (False, True):
        assert_same_output(ours(text, split_special_tokens=split), ref(text, split_special_tokens=split))


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_default_calls_are_silent(pairs, kind, caplog, recwarn):
    _, ours = pairs[kind]
    with caplog.at_level("INFO"):
        out = ours(TEXTS, padding=True, truncation=True, return_tensors="pt")
        ours(TEXTS[0], PAIR_B[0])
        ours.batch_decode(out["input_ids"], skip_special_tokens=True, clean_up_tokenization_spaces=True)
        ours.decode(out["input_ids"][0])
    assert caplog.records == [] and len(recwarn) == 0
