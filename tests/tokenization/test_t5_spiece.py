"""T5 from a bare `spiece.model` through the tokenizer class, against transformers' T5Tokenizer.

tests/tokenization/test_corpus_parity.py covers the English Unigram model with a tokenizer_config.json naming the
class; here are the other real SentencePiece models (Japanese Unigram, English BPE, one with user-defined pieces),
`extra_ids` from the config, a folder where only config.json's model type names the family, and saving both ways.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers

import leanformers
from conftest import fixture_path

from .conftest import (assert_same_output, assert_same_vocabulary_and_texts, auto_pair, check_save_round_trips,
                       same_decoding)
from .corpus import USER_DEFINED_LAYOUT, corpus, pairs, respelled_sentencepiece

TEXTS = corpus() + ["<extra_id_0> sentinel <extra_id_6> and <extra_id_7>", "</s><pad><unk>"]
PAIRS = pairs()
# truncating a several-thousand-character pair token by token is slow: truncation runs on the shorter pairs
SHORT_PAIRS = [(a, b) for a, b in PAIRS if len(a) + len(b) <= 600]
SPM = ("sentencepiece", "test")
# folder id -> (model file, tokenizer_config.json or None for a folder with only config.json)
CASES = {
    "japanese": ("kyoto_ja_unigram_8000.model", {"tokenizer_class": "T5Tokenizer"}),
    "english-bpe": ("botchan_en_bpe_1000.model", {"tokenizer_class": "T5Tokenizer"}),
    "user-defined": ("user_defined", {"tokenizer_class": "T5Tokenizer"}),
    "extra-ids-7": ("botchan_en_unigram_1000.model", {"tokenizer_class": "T5Tokenizer", "extra_ids": 7}),
    "model-type-only": ("botchan_en_unigram_1000.model", None),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def folder(request, tmp_path_factory) -> Path:
    model, config = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    if model == "user_defined":
        respelled_sentencepiece(fixture_path(*SPM, "botchan_en_bpe_1000.model"), root / "spiece.model",
                                **USER_DEFINED_LAYOUT)
    else:
        shutil.copy(fixture_path(*SPM, model), root / "spiece.model")
    if config is None:
        (root / "config.json").write_text(json.dumps({"model_type": "t5"}), encoding="utf-8")
    else:
        (root / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def _assert_same(ours, ref):
    assert type(ours) is leanformers.T5TokenizerFast
    encoded = assert_same_vocabulary_and_texts(ours, ref, TEXTS, PAIRS, return_offsets_mapping=True)
    first, second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    assert_same_output(ours(first, second, padding=True, truncation=True, max_length=24),
                       ref(first, second, padding=True, truncation=True, max_length=24))
    same_decoding(ours, ref, encoded["input_ids"])
    assert ours.get_sentinel_token_ids() == ref.convert_tokens_to_ids(ours.get_sentinel_tokens())


@pytest.fixture(scope="module")
def loaded(folder):
    """(ours, reference) loaded with AutoTokenizer from the folder."""
    return auto_pair(folder)


def test_bare_spiece_model_matches_reference(loaded):
    ours, ref = loaded
    assert type(ref) is transformers.T5Tokenizer
    _assert_same(ours, ref)


def test_save_round_trips(loaded, tmp_path):
    ours, ref = loaded
    check_save_round_trips(ours, ref, tmp_path, _assert_same)
