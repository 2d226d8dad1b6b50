"""MarianTokenizer against transformers' MarianTokenizer, both loaded from the same opus-mt style folders.

The folders are built here from real SentencePiece models: `source.spm` and `target.spm` are two different models
(so that switching to the target model for `text_target=` shows), and vocab.json is made of their pieces in a
shuffled order, with language codes (`>>fr<<`) and the special tokens, as in opus-mt checkpoints. One folder shares
one vocabulary between both sides; the other has `separate_vocabs` with target_vocab.json.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import transformers
from tokenizers import AddedToken

import leanformers
from conftest import fixture_path
from leanformers.errors import ResourceNotFoundError, TokenizerError

from .conftest import assert_same_output, auto_pair, both_refuse, same_call, same_decoding
from .corpus import corpus, pairs, short_corpus

TEXTS = corpus()
PAIRS = pairs()
SHORT = short_corpus()[:60]
FIRST, SECOND = [a for a, _ in PAIRS], [b for _, b in PAIRS]
SHORT_PAIRS = [(a, b) for a, b in PAIRS if len(a) + len(b) <= 600]
SPM = ("sentencepiece", "test")
MODELS = {"english": "botchan_en_unigram_1000.model", "japanese": "kyoto_ja_unigram_8000.model",
          "english-bpe": "botchan_en_bpe_1000.model"}
# folder -> (source model, target model, separate vocabularies)
FOLDERS = {"shared": ("english", "japanese", False), "separate": ("english", "english-bpe", True)}
CODES = [">>fr<<", ">>de<<", ">>ja<<"]
CODE_TEXTS = [">>fr<< Hello world", ">>de<<Hallo", ">>xx<< an unknown code", "Hi >>fr<< in the middle",
              " >>fr<< after a space", "</s>>>de<< after a special token", ">>ja<<", ">><< empty", ">>a b<< c",
              ">>fr<< >>de<< two codes", ">> no end", "<<>>fr<<"]
TARGETS = ["こんにちは、世界。", "今日は良い天気です", "Hello world", "東京 and Kyoto", ""]


def _pieces(name: str) -> list[str]:
    from sentencepiece import SentencePieceProcessor

    model = SentencePieceProcessor(model_file=str(fixture_path(*SPM, MODELS[name])))
    return [model.id_to_piece(index) for index in range(model.get_piece_size())]


def _vocab(names: list[str], seed: int) -> dict[str, int]:
    """An opus-mt style vocab.json: `</s>`, `<unk>`, language codes, the pieces (shuffled), `<pad>` last."""
    body = list(dict.fromkeys(piece for name in names for piece in _pieces(name)
                              if piece not in ("<unk>", "<s>", "</s>")))
    random.Random(seed).shuffle(body)
    return {token: index for index, token in enumerate(["</s>", "<unk>", *CODES, *body, "<pad>"])}


def _marian_folder(root: Path, source: str, target: str, separate: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(fixture_path(*SPM, MODELS[source]), root / "source.spm")
    shutil.copy(fixture_path(*SPM, MODELS[target]), root / "target.spm")
    if separate:
        (root / "vocab.json").write_text(json.dumps(_vocab([source], 0)), encoding="utf-8")
        (root / "target_vocab.json").write_text(json.dumps(_vocab([target], 1)), encoding="utf-8")
    else:
        (root / "vocab.json").write_text(json.dumps(_vocab([source, target], 0)), encoding="utf-8")
    config = {"tokenizer_class": "MarianTokenizer", "separate_vocabs": separate, "source_lang": "en",
              "target_lang": "ja"}
    (root / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("marian")
    return {key: _marian_folder(root / key, *spec) for key, spec in FOLDERS.items()}


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def pair(request, folders):
    """(ours, reference) from the same folder; tests that change a tokenizer load their own."""
    return auto_pair(folders[request.param])


# ---------------------------------------------------------------------------------------------------- vocabulary
def test_classes_and_vocabulary(pair):
    ours, ref = pair
    assert type(ours) is leanformers.MarianTokenizer and type(ref) is transformers.MarianTokenizer
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    assert ours.get_vocab() == ref.get_vocab() and ours.get_src_vocab() == ref.get_src_vocab()
    assert ours.all_special_tokens == ref.all_special_tokens and ours.all_special_ids == ref.all_special_ids
    assert {i: repr(t) for i, t in ours.added_tokens_decoder.items()} == {
        i: repr(t) for i, t in ref.added_tokens_decoder.items()}
    for name in ("eos_token", "unk_token", "pad_token", "bos_token"):
        assert getattr(ours, name) == getattr(ref, name) and getattr(ours, f"{name}_id") == getattr(ref, f"{name}_id")
    assert ours.supported_language_codes == ref.supported_language_codes
    assert (ours.model_max_length, ours.padding_side, ours.model_input_names, ours.is_fast) == (
        ref.model_max_length, ref.padding_side, ref.model_input_names, ref.is_fast)
    assert (ours.source_lang, ours.target_lang, ours.separate_vocabs) == (
        ref.source_lang, ref.target_lang, ref.separate_vocabs)
    assert ours.decoder == ref.decoder
    assert ours.num_special_tokens_to_add() == ref.num_special_tokens_to_add()
    assert ours.build_inputs_with_special_tokens([5, 6], [7]) == ref.build_inputs_with_special_tokens([5, 6], [7])


# ------------------------------------------------------------------------------------------------------- corpus
def test_corpus_tokens_ids_and_decoding(pair):
    ours, ref = pair
    assert [ours.tokenize(text) for text in TEXTS] == [ref.tokenize(text) for text in TEXTS]
    encoded = ref(TEXTS, return_special_tokens_mask=True, return_length=True)
    assert_same_output(ours(TEXTS, return_special_tokens_mask=True, return_length=True), encoded)
    rows = encoded["input_ids"]
    assert [ours.convert_ids_to_tokens(row) for row in rows] == [ref.convert_ids_to_tokens(row) for row in rows]
    same_decoding(ours, ref, rows)
    for source in (True, False):
        same_decoding(ours, ref, rows[:80], use_source_tokenizer=source)
    assert ours.batch_decode(rows[:80], clean_up_tokenization_spaces=True) == ref.batch_decode(
        rows[:80], clean_up_tokenization_spaces=True)
    mask = ours.get_special_tokens_mask(rows[0], already_has_special_tokens=True)
    assert mask == ref.get_special_tokens_mask(rows[0], already_has_special_tokens=True)


def test_single_calls(pair):
    ours, ref = pair
    for text in SHORT[:30]:
        assert_same_output(ours(text, return_special_tokens_mask=True), ref(text, return_special_tokens_mask=True))
        assert ours.encode(text) == ref.encode(text)
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        ids = ref.encode(text)
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
    assert_same_output(ours(SHORT[3], return_tensors="pt"), ref(SHORT[3], return_tensors="pt"))
    assert ours.decode(ref.encode(SHORT[3], return_tensors="pt")[0]) == ref.decode(
        ref.encode(SHORT[3], return_tensors="pt")[0])


def test_pairs(pair):
    ours, ref = pair
    same_call(ours, ref, FIRST, SECOND, return_token_type_ids=True, return_special_tokens_mask=True)
    same_call(ours, ref, list(zip(FIRST[:40], SECOND[:40])), return_token_type_ids=True)
    for first, second in PAIRS[:20]:
        same_call(ours, ref, first, second, return_token_type_ids=True, return_special_tokens_mask=True)
    same_decoding(ours, ref, ref(FIRST, SECOND)["input_ids"])


def test_padding_and_truncation(pair):
    ours, ref = pair
    short_first, short_second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=32, return_tensors="np")
    same_call(ours, ref, TEXTS, padding="max_length", truncation=True, max_length=40, return_tensors="pt")
    same_call(ours, ref, SHORT, padding="longest", pad_to_multiple_of=8, return_special_tokens_mask=True)
    same_call(ours, ref, TEXTS, truncation=True)  # to model_max_length (512)
    same_call(ours, ref, FIRST, SECOND, padding="max_length", truncation="longest_first", max_length=32)
    for max_length in (7, 12, 25):  # odd budgets split between sequences of equal and unequal lengths
        same_call(ours, ref, short_first, short_second, truncation="longest_first", max_length=max_length,
                   padding=True, return_token_type_ids=True)
    same_call(ours, ref, short_first, short_second, truncation="only_second", max_length=20, padding=True)
    same_call(ours, ref, short_second, short_first, truncation="only_first", max_length=20)
    both_refuse(ours, ref, TEXTS, padding=True, truncation=True, max_length=31, pad_to_multiple_of=3)
    same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=24, pad_to_multiple_of=8)


def test_sides_and_overflow(folders):
    ours, ref = auto_pair(folders["shared"])
    for tokenizer in (ours, ref):
        tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=24, return_special_tokens_mask=True)
    same_call(ours, ref, FIRST, SECOND, padding=True, truncation="longest_first", max_length=21)
    for text in SHORT[:30]:
        same_call(ours, ref, text, truncation=True, max_length=8, stride=3, return_overflowing_tokens=True)
    for first, second in SHORT_PAIRS[:30]:
        same_call(ours, ref, first, second, truncation="only_second", max_length=12, stride=2,
                   return_overflowing_tokens=True)
        both_refuse(ours, ref, first, second, truncation="longest_first", max_length=12,
                     return_overflowing_tokens=True)
    # rows without overflowing tokens lack the field: the batch cannot be put together
    both_refuse(ours, ref, TEXTS, truncation=True, max_length=8, stride=2, return_overflowing_tokens=True)
    same_call(ours, ref, TEXTS[:8], truncation=True, max_length=3, stride=1, return_overflowing_tokens=True)
    same_call(ours, ref, TEXTS, truncation=True, max_length=8, return_overflowing_tokens=True, padding=True,
               return_tensors="np")


# ----------------------------------------------------------------------------------------- Marian's own features
def test_targets_use_the_target_model(pair, folders):
    ours, ref = pair
    same_call(ours, ref, TEXTS[:60], text_target=TEXTS[60:120], padding=True, truncation=True, max_length=40)
    same_call(ours, ref, text_target=TARGETS, padding=True)
    same_call(ours, ref, TARGETS, text_target=TARGETS, max_target_length=6, truncation=True)
    labels = ours(TARGETS, text_target=TARGETS)
    assert labels["labels"] != labels["input_ids"]  # the two models segment the same text differently
    same_decoding(ours, ref, labels["labels"])
    same_decoding(ours, ref, labels["labels"], use_source_tokenizer=False)


def test_language_codes(pair):
    ours, ref = pair
    assert [ours.tokenize(text) for text in CODE_TEXTS] == [ref.tokenize(text) for text in CODE_TEXTS]
    same_call(ours, ref, CODE_TEXTS, return_special_tokens_mask=True)
    same_decoding(ours, ref, ref(CODE_TEXTS)["input_ids"])
    assert ours.remove_language_code(">>fr<< x") == ref.remove_language_code(">>fr<< x")


def test_random_ids_decode(pair):
    ours, ref = pair
    rng = random.Random(7)
    rows = [[rng.randrange(len(ref)) for _ in range(rng.randint(0, 30))] for _ in range(200)]
    assert [ours.convert_ids_to_tokens(row) for row in rows] == [ref.convert_ids_to_tokens(row) for row in rows]
    same_decoding(ours, ref, rows)
    same_decoding(ours, ref, rows, use_source_tokenizer=True)
    same_decoding(ours, ref, rows, use_source_tokenizer=False)


def test_input_forms(pair):
    ours, ref = pair
    words = [text.split() for text in SHORT[:20] if text.split()]
    same_call(ours, ref, words, is_split_into_words=True)
    same_call(ours, ref, words[0], is_split_into_words=True, return_tensors="np")
    same_call(ours, ref, words[0], words[1], is_split_into_words=True)
    tokens = ref.tokenize(SHORT[5])
    same_call(ours, ref, tokens)  # a list of str without is_split_into_words is a batch of texts
    ids = ref.encode(SHORT[5], add_special_tokens=False)
    same_call(ours, ref, ids, ids[:3])
    same_call(ours, ref, [SHORT[1], SHORT[2]], split_special_tokens=True)
    both_refuse(ours, ref, SHORT[:4], ["x", "y", "z"])
    both_refuse(ours, ref, [("a", "b", "c")])


def test_added_tokens(folders):
    ours, ref = auto_pair(folders["separate"])
    texts = ["say <new> now", "x<left>y and  <left>  z", "a tight word wordy", " </s> <sp> here <sp>", "<new><new>",
             ">>fr<< <new> code then token"]
    for tokenizer in (ours, ref):
        assert tokenizer.add_tokens([AddedToken("<new>"), AddedToken("<left>", lstrip=True, rstrip=True),
                                     AddedToken("word", single_word=True)]) == 3
        assert tokenizer.add_special_tokens({"additional_special_tokens": ["<sp>"]}) == 1
    assert len(ours) == len(ref) and ours.get_vocab() == ref.get_vocab()
    assert ours.all_special_tokens == ref.all_special_tokens
    assert [ours.tokenize(text) for text in texts] == [ref.tokenize(text) for text in texts]
    same_call(ours, ref, texts, return_special_tokens_mask=True)
    same_call(ours, ref, texts, text_target=texts)
    same_call(ours, ref, texts, split_special_tokens=True)
    same_decoding(ours, ref, ref(texts)["input_ids"])


# ------------------------------------------------------------------------------------------------------- saving
def test_save_round_trips(folders, tmp_path):
    for key, folder in folders.items():
        ours, ref = auto_pair(folder)
        for tokenizer in (ours, ref):
            tokenizer.add_tokens(["<extra>"])
        ref.save_pretrained(str(tmp_path / key / "by-reference"))
        ours.save_pretrained(tmp_path / key / "by-ours")
        names = sorted(path.name for path in (tmp_path / key / "by-ours").iterdir())
        assert names == sorted(path.name for path in (tmp_path / key / "by-reference").iterdir())
        loaded = [leanformers.AutoTokenizer.from_pretrained(str(tmp_path / key / "by-reference")),
                  transformers.AutoTokenizer.from_pretrained(str(tmp_path / key / "by-ours")),
                  leanformers.AutoTokenizer.from_pretrained(str(tmp_path / key / "by-ours"))]
        texts = SHORT[:30] + ["with <extra> inside"]
        expected = ref(texts, text_target=texts)
        for tokenizer in loaded:
            assert type(tokenizer).__name__ == "MarianTokenizer" and len(tokenizer) == len(ref)
            assert tokenizer.get_vocab() == ref.get_vocab() and tokenizer.separate_vocabs == ref.separate_vocabs
            assert_same_output(tokenizer(texts, text_target=texts), expected)
            assert tokenizer.batch_decode(expected["labels"]) == ref.batch_decode(expected["labels"])


def test_loading_paths(folders, tmp_path):
    """From a folder without tokenizer_config.json (the model type decides), by class, and with a tokenizer.json
    beside the vocabulary files (not used)."""
    bare = tmp_path / "bare"
    shutil.copytree(folders["shared"], bare)
    (bare / "tokenizer_config.json").unlink()
    (bare / "config.json").write_text(json.dumps({"model_type": "marian"}), encoding="utf-8")
    ref = transformers.AutoTokenizer.from_pretrained(str(bare))
    for ours in (leanformers.AutoTokenizer.from_pretrained(bare), leanformers.MarianTokenizer.from_pretrained(bare),
                 leanformers.MarianTokenizer(bare / "source.spm", bare / "target.spm", bare / "vocab.json")):
        assert type(ours) is leanformers.MarianTokenizer
        assert_same_output(ours(SHORT, text_target=SHORT), ref(SHORT, text_target=SHORT))
    (bare / "tokenizer.json").write_text("{}", encoding="utf-8")
    assert_same_output(leanformers.MarianTokenizer.from_pretrained(bare)(SHORT), ref(SHORT))


def test_lazy_import():
    code = ("import sys, leanformers; cls = leanformers.MarianTokenizer; ctrl = leanformers.CTRLTokenizer; "
            "assert cls.__name__ == 'MarianTokenizer' and ctrl.__name__ == 'CTRLTokenizer'; "
            "assert 'torch' not in sys.modules and 'sentencepiece' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------------------- errors
def test_errors(folders, tmp_path):
    folder = folders["shared"]
    with pytest.raises(TokenizerError, match="source.spm"):
        leanformers.MarianTokenizer(vocab=str(folder / "vocab.json"))
    with pytest.raises(ResourceNotFoundError):
        leanformers.MarianTokenizer(folder / "missing.spm", folder / "target.spm", folder / "vocab.json")
    with pytest.raises(TokenizerError, match="unknown token"):
        leanformers.MarianTokenizer(folder / "source.spm", folder / "target.spm", folder / "vocab.json",
                                    unk_token="<nope>")
    with pytest.raises(TokenizerError, match="target_vocab_file"):
        leanformers.MarianTokenizer(folder / "source.spm", folder / "target.spm", folder / "vocab.json",
                                    separate_vocabs=True)
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        leanformers.MarianTokenizer(tokenizer_file=str(folder / "vocab.json"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MarianTokenizer"}))
    with pytest.raises(ResourceNotFoundError):
        leanformers.AutoTokenizer.from_pretrained(empty)
    ours, ref = auto_pair(folder)
    for index in (len(ref) + 10 ** 6, -1):  # in neither the vocabulary nor the SentencePiece model
        with pytest.raises(IndexError):
            ref.decode([5, index])
        with pytest.raises(TokenizerError, match="neither the vocabulary"):
            ours.decode([5, index])
