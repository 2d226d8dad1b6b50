"""BertGeneration's tokenizer from a bare `spiece.model` (the real English BPE and Unigram SentencePiece models),
against transformers' BertGenerationTokenizer on the mixed corpus: ids, offsets-free calls, pairs, truncation,
padding, decoding, added tokens, and saving both ways."""

from __future__ import annotations

import pytest
import transformers

import leanformers

from .conftest import (SPM_ENGLISH, assert_same_output, assert_same_vocabulary_and_texts, by_model_type,
                       check_save_round_trips, same_decoding, spiece_pair)
from .corpus import corpus, pairs

TEXTS = corpus() + ["</s> inline <s> <::::> specials <pad> <unk>", "   spaces   and\ttabs  "]
PAIRS = [(a, b) for a, b in pairs() if len(a) + len(b) <= 600]


@pytest.fixture(scope="module", params=sorted(SPM_ENGLISH))
def loaded(request, tmp_path_factory):
    """(ours, reference, folder) loaded with AutoTokenizer from a folder with spiece.model."""
    return spiece_pair(tmp_path_factory, request.param, "BertGenerationTokenizer")


def _assert_same(ours, ref):
    assert type(ours) is leanformers.BertGenerationTokenizer
    encoded = assert_same_vocabulary_and_texts(ours, ref, TEXTS, PAIRS)
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    assert_same_output(ours(first, second, truncation=True, max_length=24, padding=True),
                       ref(first, second, truncation=True, max_length=24, padding=True))
    same_decoding(ours, ref, encoded["input_ids"])
    assert ours.tokenize(TEXTS[0]) == ref.tokenize(TEXTS[0])


def test_spiece_model_matches_reference(loaded):
    ours, ref, _ = loaded
    assert type(ref) is transformers.BertGenerationTokenizer
    _assert_same(ours, ref)


def test_added_tokens_match_reference(loaded):
    _, _, folder = loaded
    ours = leanformers.BertGenerationTokenizer.from_pretrained(folder)
    ref = transformers.BertGenerationTokenizer.from_pretrained(str(folder))
    assert ours.add_tokens(["new_tok", "<extra>"]) == ref.add_tokens(["new_tok", "<extra>"]) == 2
    assert len(ours) == len(ref) and ours.get_vocab() == ref.get_vocab()
    text = "a new_tok between <extra> words"
    assert ours(text)["input_ids"] == ref(text)["input_ids"]
    assert ours.decode(ours(text)["input_ids"]) == ref.decode(ref(text)["input_ids"])


def test_save_round_trips(loaded, tmp_path):
    ours, ref, _ = loaded
    saved = check_save_round_trips(ours, ref, tmp_path, _assert_same)
    assert saved["tokenizer_class"] == "BertGenerationTokenizer"


def test_model_type_alone_picks_the_family(loaded, tmp_path):
    _, ref, folder = loaded
    _assert_same(by_model_type(folder, tmp_path, "bert-generation"), ref)


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(leanformers.errors.TokenizerError, match="spiece.model"):
        leanformers.BertGenerationTokenizer()
