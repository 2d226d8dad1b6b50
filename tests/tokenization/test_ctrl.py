"""CTRLTokenizer against transformers' CTRLTokenizer, both loaded from the same folder.

The folder holds a small CTRL-style vocabulary trained here on botchan.txt: merges.txt in `</w>` notation under a
version header, vocab.json naming word-final pieces plainly and the others with `@@`, as the released CTRL files do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers

import leanformers
from conftest import fixture_path
from leanformers.errors import ResourceNotFoundError, TokenizerError

from .conftest import assert_same_output, auto_pair, both_refuse, same_call, same_decoding
from .corpus import corpus, pairs, short_corpus

TEXTS = corpus() + ["file\x1cseparator and group\x1dseparator", "line\nbreaks\n\nand\r\nreturns\n", "a b c d",
                    "Links Politics Science News Wikipedia"]
PAIRS = pairs()
SHORT = short_corpus()[:60]
FIRST, SECOND = [a for a, _ in PAIRS], [b for _, b in PAIRS]
SHORT_PAIRS = [(a, b) for a, b in PAIRS if len(a) + len(b) <= 600]


def _ctrl_files(folder: Path) -> Path:
    """vocab.json + merges.txt in CTRL's format, from a BPE with `</w>` word ends trained on botchan.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    engine.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>"], end_of_word_suffix="</w>",
                                  show_progress=False)
    engine.train([str(fixture_path("sentencepiece", "test", "botchan.txt"))], trainer)
    model = json.loads(engine.to_str())["model"]
    vocab = {}
    for token in sorted(model["vocab"], key=model["vocab"].get):
        name = token if token == "<unk>" else token[:-4] if token.endswith("</w>") else token + "@@"
        vocab.setdefault(name, len(vocab))
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model["merges"]]
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CTRLTokenizer"}),
                                                  encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _ctrl_files(tmp_path_factory.mktemp("ctrl") / "ctrl")


def _load(folder: Path, pad: bool = False):
    ours, ref = auto_pair(folder)
    if pad:  # CTRL has no padding token; give both the same one
        for tokenizer in (ours, ref):
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return ours, ref


@pytest.fixture(scope="module")
def pair(folder):
    return _load(folder)


def _same_decoding(ours, ref, rows):
    for clean in (None, True):
        same_decoding(ours, ref, rows, clean_up_tokenization_spaces=clean)


def test_classes_and_vocabulary(pair):
    ours, ref = pair
    assert type(ours) is leanformers.CTRLTokenizer and type(ref) is transformers.CTRLTokenizer
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size and ours.get_vocab() == ref.get_vocab()
    assert ours.all_special_tokens == ref.all_special_tokens and ours.all_special_ids == ref.all_special_ids
    assert {i: repr(t) for i, t in ours.added_tokens_decoder.items()} == {
        i: repr(t) for i, t in ref.added_tokens_decoder.items()}
    assert (ours.model_max_length, ours.padding_side, ours.model_input_names, ours.is_fast) == (
        ref.model_max_length, ref.padding_side, ref.model_input_names, ref.is_fast)
    assert ours.control_codes == ref.control_codes and ours.bpe_ranks == ref.bpe_ranks
    assert ours.decoder == ref.decoder and ours.encoder == ref.encoder
    assert ours.num_special_tokens_to_add(pair=True) == ref.num_special_tokens_to_add(pair=True)
    assert all(ours.bpe(word) == ref.bpe(word) for word in ["a", "botchan\n", "unbelievably", "x"])


def test_corpus_tokens_ids_and_decoding(pair):
    ours, ref = pair
    assert [ours.tokenize(text) for text in TEXTS] == [ref.tokenize(text) for text in TEXTS]
    encoded = ref(TEXTS, return_special_tokens_mask=True, return_length=True, return_token_type_ids=True)
    assert_same_output(ours(TEXTS, return_special_tokens_mask=True, return_length=True, return_token_type_ids=True),
                       encoded)
    rows = encoded["input_ids"]
    assert [ours.convert_ids_to_tokens(row) for row in rows] == [ref.convert_ids_to_tokens(row) for row in rows]
    _same_decoding(ours, ref, rows)


def test_single_calls_and_pairs(pair):
    ours, ref = pair
    for text in SHORT[:30]:
        assert_same_output(ours(text, return_special_tokens_mask=True), ref(text, return_special_tokens_mask=True))
        assert ours.encode(text) == ref.encode(text)
        ids = ref.encode(text)
        assert ours.decode(ids) == ref.decode(ids) and ours.decode(ids, True) == ref.decode(ids, True)
    same_call(ours, ref, FIRST, SECOND, return_token_type_ids=True, return_special_tokens_mask=True)
    same_call(ours, ref, list(zip(FIRST[:30], SECOND[:30])))
    same_call(ours, ref, SHORT[0], return_tensors="pt")
    same_call(ours, ref, [text.split() for text in SHORT[:10] if text.split()], is_split_into_words=True)
    both_refuse(ours, ref, SHORT[:5], padding=True)  # no padding token
    _same_decoding(ours, ref, ref(FIRST, SECOND)["input_ids"])


def test_padding_truncation_and_overflow(folder):
    ours, ref = _load(folder, pad=True)
    short_first, short_second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=32, return_tensors="np")
    same_call(ours, ref, SHORT, padding="max_length", max_length=48, return_special_tokens_mask=True)
    same_call(ours, ref, SHORT, padding=True, pad_to_multiple_of=8, return_tensors="pt")
    for max_length in (7, 12, 25):
        same_call(ours, ref, short_first, short_second, truncation="longest_first", max_length=max_length,
                   padding=True)
    same_call(ours, ref, short_first, short_second, truncation="only_second", max_length=20, padding=True)
    for text in SHORT[:20]:
        same_call(ours, ref, text, truncation=True, max_length=6, stride=2, return_overflowing_tokens=True)
    for first, second in SHORT_PAIRS[:20]:
        same_call(ours, ref, first, second, truncation="only_first", max_length=10, stride=1,
                   return_overflowing_tokens=True)
    for tokenizer in (ours, ref):
        tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=20)
    _same_decoding(ours, ref, ref(SHORT, padding=True)["input_ids"])


def test_added_tokens(folder):
    ours, ref = _load(folder)
    texts = ["say <new> now", "x<left>y and  <left>  z", "Links and Linksy", "<unk> <sp> <sp>x", ""]
    for tokenizer in (ours, ref):
        tokenizer.add_tokens([AddedToken("<new>"), AddedToken("<left>", lstrip=True, rstrip=True),
                              AddedToken("Links", single_word=True)])
        tokenizer.add_special_tokens({"additional_special_tokens": ["<sp>"]})
    assert len(ours) == len(ref) and ours.get_vocab() == ref.get_vocab()
    assert [ours.tokenize(text) for text in texts] == [ref.tokenize(text) for text in texts]
    same_call(ours, ref, texts, return_special_tokens_mask=True)
    same_call(ours, ref, texts, split_special_tokens=True)
    _same_decoding(ours, ref, ref(texts)["input_ids"])


def test_save_round_trips_and_loading(folder, tmp_path):
    ours, ref = _load(folder)
    for tokenizer in (ours, ref):
        tokenizer.add_tokens(["<extra>"])
    ref.save_pretrained(str(tmp_path / "by-reference"))
    ours.save_pretrained(tmp_path / "by-ours")
    assert sorted(p.name for p in (tmp_path / "by-ours").iterdir()) == sorted(
        p.name for p in (tmp_path / "by-reference").iterdir())
    assert (tmp_path / "by-ours" / "merges.txt").read_text() == (tmp_path / "by-reference" / "merges.txt").read_text()
    texts = SHORT[:30] + ["with <extra> inside"]
    expected = ref(texts)
    for tokenizer in (leanformers.AutoTokenizer.from_pretrained(tmp_path / "by-reference"),
                      transformers.AutoTokenizer.from_pretrained(str(tmp_path / "by-ours")),
                      leanformers.AutoTokenizer.from_pretrained(tmp_path / "by-ours")):
        assert type(tokenizer).__name__ == "CTRLTokenizer" and tokenizer.get_vocab() == ref.get_vocab()
        assert_same_output(tokenizer(texts), expected)
    bare = tmp_path / "bare"  # no tokenizer_config.json: the model type decides
    shutil.copytree(folder, bare)
    (bare / "tokenizer_config.json").unlink()
    (bare / "config.json").write_text(json.dumps({"model_type": "ctrl"}), encoding="utf-8")
    reference = transformers.AutoTokenizer.from_pretrained(str(bare))
    for tokenizer in (leanformers.AutoTokenizer.from_pretrained(bare),
                      leanformers.CTRLTokenizer(bare / "vocab.json", bare / "merges.txt")):
        assert type(tokenizer) is leanformers.CTRLTokenizer
        assert_same_output(tokenizer(SHORT), reference(SHORT))


def test_errors(folder, tmp_path):
    with pytest.raises(TokenizerError, match="merges.txt"):
        leanformers.CTRLTokenizer(vocab_file=str(folder / "vocab.json"))
    with pytest.raises(ResourceNotFoundError):
        leanformers.CTRLTokenizer(folder / "vocab.json", tmp_path / "missing.txt")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        leanformers.CTRLTokenizer(tokenizer_file=str(folder / "vocab.json"))
    ours, ref = _load(folder)
    with pytest.raises(TokenizerError):
        ours(SHORT[:2], padding=True)
    with pytest.raises(ValueError):
        ref(SHORT[:2], padding=True)
