"""XLNetTokenizer against the reference on the corpus, from a SentencePiece model: `A <sep> B <sep> <cls>` with token
types 0/1/2 at the end, left padding by default, pairs, decoding, and saving -> reloading in both libraries.

leanformers returns the token type ids by default, as transformers 4.x did (test_token_types.py compares them with
4.55.4); against 5.x, which leaves them out unless asked, the other fields are compared."""

from __future__ import annotations

import shutil

import pytest
import transformers

import leanformers
from conftest import fixture_path

from .corpus import pairs, short_corpus


def _plain(encoding) -> dict:
    """A call's output without the token type ids that only leanformers returns by default."""
    return {key: value for key, value in encoding.items() if key != "token_type_ids"}

TEXTS = short_corpus()[:80] + ["Fill the <mask> here", "two <mask> <mask> masks", "<sep> inline <cls>"]
PAIRS = [(a, b) for a, b in pairs() if len(a) + len(b) < 400][:40]
CALLS = [{}, {"padding": True}, {"padding": "max_length", "max_length": 24, "truncation": True},
         {"return_special_tokens_mask": True, "return_offsets_mapping": True, "padding": True}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlnet-spiece")
    shutil.copy(fixture_path("sentencepiece", "test", "botchan_en_unigram_1000.model"), path / "spiece.model")
    return path


@pytest.fixture(scope="module")
def both(folder):
    return leanformers.XLNetTokenizer.from_pretrained(str(folder)), transformers.XLNetTokenizer.from_pretrained(
        str(folder))


def test_layout_token_types_and_left_padding(both):
    ours, ref = both
    assert ours.padding_side == ref.padding_side == "left"
    out = ours("a b", "c", return_token_type_ids=True)
    ids, types = out["input_ids"], out["token_type_ids"]
    assert ids[-1] == ours.cls_token_id and ids.count(ours.sep_token_id) == 2 and ids[-2] == ours.sep_token_id
    assert types[-1] == 2 and set(types[:-1]) == {0, 1} and types[0] == 0
    batch = ours(["a", "a much longer text"], padding=True)
    assert batch["input_ids"][0][0] == ours.pad_token_id and batch["attention_mask"][0][0] == 0
    assert dict(out) == dict(ref("a b", "c", return_token_type_ids=True))


@pytest.mark.parametrize("call", range(len(CALLS)))
def test_corpus_singles_and_pairs(both, call):
    ours, ref = both
    kwargs = CALLS[call]
    assert _plain(ours(TEXTS, **kwargs)) == dict(ref(TEXTS, **kwargs))
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    assert _plain(ours(first, second, **kwargs)) == dict(ref(first, second, **kwargs))


def test_tokens_and_decoding(both):
    ours, ref = both
    assert [ours.tokenize(t) for t in TEXTS] == [ref.tokenize(t) for t in TEXTS]
    ids = ref([a for a, _ in PAIRS], [b for _, b in PAIRS])["input_ids"] + ref(TEXTS)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == ref.batch_decode(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("saver", ["ours", "reference"])
def test_save_and_reload_in_both_libraries(both, saver, tmp_path):
    ours, ref = both
    (ours if saver == "ours" else ref).save_pretrained(str(tmp_path))
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    expected = dict(ref(first, second, padding=True))
    for auto in (leanformers.AutoTokenizer, transformers.AutoTokenizer):
        again = auto.from_pretrained(str(tmp_path))
        assert type(again).__name__.removesuffix("Fast") == "XLNetTokenizer" and again.padding_side == "left"
        assert _plain(again(first, second, padding=True)) == _plain(expected)
        assert _plain(again(TEXTS, padding=True)) == _plain(ref(TEXTS, padding=True))
