"""Reformer's tokenizer from a bare `spiece.model` (the real English BPE and Unigram SentencePiece models), against
transformers' ReformerTokenizer on the mixed corpus: ids, offsets, pairs, truncation, decoding, and saving both
ways."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers

import leanformers
from conftest import fixture_path

from .conftest import assert_same_output
from .corpus import corpus, pairs

TEXTS = corpus() + ["</s> inline <s> specials <unk>", "   spaces   collapse  "]
PAIRS = [(a, b) for a, b in pairs() if len(a) + len(b) <= 600]
MODELS = {"bpe": "botchan_en_bpe_1000.model", "unigram": "botchan_en_unigram_1000.model"}


@pytest.fixture(scope="module", params=sorted(MODELS))
def loaded(request, tmp_path_factory):
    """(ours, reference, folder) loaded with AutoTokenizer from a folder with spiece.model."""
    folder = tmp_path_factory.mktemp(request.param)
    shutil.copy(fixture_path("sentencepiece", "test", MODELS[request.param]), folder / "spiece.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "ReformerTokenizer"}))
    ours = leanformers.AutoTokenizer.from_pretrained(str(folder))
    return ours, transformers.AutoTokenizer.from_pretrained(str(folder)), folder


def _assert_same(ours, ref):
    assert type(ours) is leanformers.ReformerTokenizerFast and len(ours) == len(ref)
    assert ours.get_vocab() == ref.get_vocab() and ours.all_special_tokens == ref.all_special_tokens
    encoded = ref(TEXTS, return_offsets_mapping=True, return_special_tokens_mask=True)
    assert_same_output(ours(TEXTS, return_offsets_mapping=True, return_special_tokens_mask=True), encoded)
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    assert_same_output(ours(first, second, return_token_type_ids=True), ref(first, second, return_token_type_ids=True))
    assert_same_output(ours(first, second, truncation=True, max_length=24), ref(first, second, truncation=True,
                                                                                 max_length=24))
    for skip in (False, True):
        rows = encoded["input_ids"]
        assert ours.batch_decode(rows, skip_special_tokens=skip) == ref.batch_decode(rows, skip_special_tokens=skip)


def test_spiece_model_matches_reference(loaded):
    ours, ref, _ = loaded
    assert type(ref) is transformers.ReformerTokenizer
    _assert_same(ours, ref)


def test_save_round_trips(loaded, tmp_path):
    ours, ref, _ = loaded
    ours.save_pretrained(tmp_path / "by-ours")
    ref.save_pretrained(str(tmp_path / "by-reference"))
    _assert_same(leanformers.AutoTokenizer.from_pretrained(tmp_path / "by-reference"), ref)
    _assert_same(ours, transformers.AutoTokenizer.from_pretrained(str(tmp_path / "by-ours")))
    saved = json.loads(Path(tmp_path / "by-ours" / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"] == "ReformerTokenizer"


def test_model_type_alone_picks_the_family(loaded, tmp_path):
    _, ref, folder = loaded
    shutil.copy(folder / "spiece.model", tmp_path / "spiece.model")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "reformer"}))
    ours = leanformers.AutoTokenizer.from_pretrained(str(tmp_path))
    _assert_same(ours, ref)
