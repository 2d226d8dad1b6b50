"""Reformer's tokenizer from a bare `spiece.model` (the real English BPE and Unigram SentencePiece models), against
transformers' ReformerTokenizer on the mixed corpus: ids, offsets, pairs, truncation, decoding, and saving both
ways."""

from __future__ import annotations

import pytest
import transformers

import leanformers

from .conftest import (SPM_ENGLISH, assert_same_output, assert_same_vocabulary_and_texts, by_model_type,
                       check_save_round_trips, same_decoding, spiece_pair)
from .corpus import corpus, pairs

TEXTS = corpus() + ["</s> inline <s> specials <unk>", "   spaces   collapse  "]
PAIRS = [(a, b) for a, b in pairs() if len(a) + len(b) <= 600]


@pytest.fixture(scope="module", params=sorted(SPM_ENGLISH))
def loaded(request, tmp_path_factory):
    """(ours, reference, folder) loaded with AutoTokenizer from a folder with spiece.model."""
    return spiece_pair(tmp_path_factory, request.param, "ReformerTokenizer")


def _assert_same(ours, ref):
    assert type(ours) is leanformers.ReformerTokenizerFast
    encoded = assert_same_vocabulary_and_texts(ours, ref, TEXTS, PAIRS, return_offsets_mapping=True)
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    assert_same_output(ours(first, second, truncation=True, max_length=24), ref(first, second, truncation=True,
                                                                                 max_length=24))
    same_decoding(ours, ref, encoded["input_ids"])


def test_spiece_model_matches_reference(loaded):
    ours, ref, _ = loaded
    assert type(ref) is transformers.ReformerTokenizer
    _assert_same(ours, ref)


def test_save_round_trips(loaded, tmp_path):
    ours, ref, _ = loaded
    saved = check_save_round_trips(ours, ref, tmp_path, _assert_same)
    assert saved["tokenizer_class"] == "ReformerTokenizer"


def test_model_type_alone_picks_the_family(loaded, tmp_path):
    _, ref, folder = loaded
    _assert_same(by_model_type(folder, tmp_path, "reformer"), ref)
