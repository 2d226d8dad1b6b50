"""XLMTokenizer against transformers' XLMTokenizer, loaded from the same folders, over the shared corpus.

Two vocabularies are built here: one trained with the `tokenizers` BPE trainer (every merge part and result in the
vocabulary: BPE runs in the engine), and one with fastBPE's layout (intermediate merge results missing from
vocab.json, a count column in merges.txt, no newline at the end: BPE runs in the Python step).
"""

from __future__ import annotations

import copy
import json
import pickle
import random
import subprocess
import sys

import pytest
import transformers
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers

import leanformers
import leanformers.tokenization as lt
from leanformers.errors import ResourceNotFoundError, TokenizerError

from .conftest import auto_pair, plain, same_decoding
from .corpus import QUESTIONS, corpus, pairs, short_corpus

TEXTS = corpus()
PAIRS = pairs()
SHORT = short_corpus()[:60]
SHORT_PAIRS = [(a, b) for a, b in PAIRS if len(a) + len(b) <= 600]
QA = [(QUESTIONS[i % len(QUESTIONS)], text) for i, text in enumerate(TEXTS[::5])]
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{index}>" for index in range(10)]
KINDS = ("engine-bpe", "fastbpe")
LANGUAGE_TEXTS = ["Ţara şi ţânţarul: «Ăsta e un test», Îmi place!", "Der Bär läuft über die Straße „schnell“.",
                  "Ça va? « Très bien », dit-il… l'homme d'affaires.", "He said \"hi\", then left -- quickly."]


def _write_folder(folder, vocab: dict, merge_lines: str, config: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(merge_lines, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMTokenizer", **(config or {})}),
                                                  encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained() -> tuple[dict, list]:
    """A small BPE with `</w>` word ends, trained on lower-cased corpus text (some characters stay unknown)."""
    engine = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    engine.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS, end_of_word_suffix="</w>",
                                  limit_alphabet=150, show_progress=False)
    engine.train_from_iterator([text.lower() for text in TEXTS[:300]], trainer)
    model = json.loads(engine.to_str())["model"]
    return model["vocab"], [tuple(merge) for merge in model["merges"]]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, trained) -> dict:
    vocab, merges = trained
    root = tmp_path_factory.mktemp("xlm")
    out = {"engine-bpe": _write_folder(root / "engine-bpe", vocab, "".join(f"{a} {b}\n" for a, b in merges))}
    # fastBPE layout: a third of the intermediate merge results (and two characters) are not in the vocabulary
    results = sorted({a + b for a, b in merges if not (a + b).endswith("</w>")})
    dropped = set(random.Random(0).sample(results, len(results) // 3)) | {"q", "z</w>"}
    kept = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1]) if token not in dropped]
    lines = "\n".join(f"{a} {b} {1000 - rank}" for rank, (a, b) in enumerate(merges))
    out["fastbpe"] = _write_folder(root / "fastbpe", {token: index for index, token in enumerate(kept)}, lines)
    return out


@pytest.fixture(scope="module", params=KINDS)
def tokenizers(request, folders):
    return auto_pair(folders[request.param])


def _same_call(ours, ref, *args, **kwargs):
    mine, theirs = ours(*args, **kwargs), ref(*args, **kwargs)
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for key in theirs:
        assert type(mine[key]) is type(theirs[key]), key
        assert plain(mine[key]) == plain(theirs[key]), key
    return theirs


def _as_ours(ref, tokens: list[str]) -> list[str]:
    """The reference's tokens with the pieces outside the vocabulary written as the unknown token."""
    vocab = ref.get_vocab()
    return [token if token in vocab else ref.unk_token for token in tokens]


def test_auto_class_engine_and_lazy_export(folders):
    for kind, model in (("engine-bpe", "BPE"), ("fastbpe", "WordLevel")):
        ours, ref = auto_pair(folders[kind])
        assert type(ours) is leanformers.XLMTokenizer and type(ref) is transformers.XLMTokenizer
        assert type(ours.backend_tokenizer.model).__name__ == model
    assert lt.tokenizer_class_name(str(folders["fastbpe"])) == "XLMTokenizer"
    assert lt.tokenizer_class("XLMTokenizer") is leanformers.XLMTokenizer
    folder = folders["fastbpe"]
    direct = leanformers.XLMTokenizer(folder / "vocab.json", merges_file=str(folder / "merges.txt"))
    reference = transformers.XLMTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    assert direct(SHORT)["input_ids"] == reference(SHORT)["input_ids"]
    code = ("import sys, leanformers; cls = leanformers.XLMTokenizer; "
            "assert cls.__name__ == 'XLMTokenizer' and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vocabulary_in_memory(trained, folders):
    vocab, merges = trained
    ours = leanformers.XLMTokenizer(vocab=vocab, merges=[" ".join(merge) for merge in merges])
    reference = transformers.AutoTokenizer.from_pretrained(str(folders["engine-bpe"]))
    assert type(ours.backend_tokenizer.model).__name__ == "BPE"
    assert ours(SHORT)["input_ids"] == reference(SHORT)["input_ids"]


def test_special_tokens_and_vocabulary(tokenizers):
    ours, ref = tokenizers
    assert len(ours) == len(ref) and ours.vocab_size == ref.vocab_size
    assert ours.get_vocab() == ref.get_vocab()
    assert ours.special_tokens_map == ref.special_tokens_map
    assert ours.all_special_tokens == ref.all_special_tokens and ours.all_special_ids == ref.all_special_ids
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        assert getattr(ours, name) == getattr(ref, name), name
        assert getattr(ours, f"{name}_id") == getattr(ref, f"{name}_id"), name
    assert ours.padding_side == ref.padding_side and ours.model_input_names == ref.model_input_names
    assert ours.is_fast == ref.is_fast and ours.do_lower_case == ref.do_lower_case
    for pair in (None, [8, 9]):
        for name in ("build_inputs_with_special_tokens", "get_special_tokens_mask",
                     "create_token_type_ids_from_sequences"):
            assert getattr(ours, name)([5, 6, 7], pair) == getattr(ref, name)([5, 6, 7], pair), name
        assert ours.num_special_tokens_to_add(pair is not None) == ref.num_special_tokens_to_add(pair is not None)
    assert ours.get_special_tokens_mask([0, 5, 1], already_has_special_tokens=True) == \
        ref.get_special_tokens_mask([0, 5, 1], already_has_special_tokens=True)


def test_corpus_single(tokenizers):
    ours, ref = tokenizers
    encoded = _same_call(ours, ref, TEXTS, return_special_tokens_mask=True, return_length=True,
                         return_token_type_ids=True)
    assert [ours.tokenize(text) for text in TEXTS] == [_as_ours(ref, ref.tokenize(text)) for text in TEXTS]
    ids = encoded["input_ids"]
    assert [ours.convert_ids_to_tokens(row) for row in ids] == [ref.convert_ids_to_tokens(row) for row in ids]
    same_decoding(ours, ref, ids)
    for row in ids[:80]:
        assert ours.decode(row, clean_up_tokenization_spaces=True) == \
            ref.decode(row, clean_up_tokenization_spaces=True)
    words = sorted({word for text in SHORT for word in text.lower().split()})
    assert [ours.bpe(word) for word in words] == [ref.bpe(word) for word in words]


def test_corpus_pairs(tokenizers):
    ours, ref = tokenizers
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    encoded = _same_call(ours, ref, first, second, return_token_type_ids=True, return_special_tokens_mask=True)
    same_decoding(ours, ref, encoded["input_ids"])


def test_single_calls(tokenizers):
    ours, ref = tokenizers
    for text in SHORT[:25]:
        _same_call(ours, ref, text, return_offsets_mapping=True)  # neither returns offsets
        _same_call(ours, ref, text, "a second text", return_token_type_ids=True, return_tensors="pt")
        _same_call(ours, ref, text, "a second text", add_special_tokens=False, return_token_type_ids=True)
        assert ours.encode(text) == ref.encode(text)
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        ids = ref.encode(text)
        assert ours.decode(ids) == ref.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
        assert ours.convert_tokens_to_ids(ref.tokenize(text)) == ref.convert_tokens_to_ids(ref.tokenize(text))


def test_padding_and_truncation(tokenizers):
    ours, ref = tokenizers
    first, second = [a for a, _ in SHORT_PAIRS], [b for _, b in SHORT_PAIRS]
    _same_call(ours, ref, TEXTS, padding=True, truncation=True, max_length=32)
    _same_call(ours, ref, SHORT, padding="max_length", truncation=True, max_length=40, return_tensors="np")
    _same_call(ours, ref, SHORT, padding="longest", pad_to_multiple_of=8, padding_side="left", return_tensors="pt")
    _same_call(ours, ref, first, second, padding="max_length", truncation="longest_first", max_length=32)
    _same_call(ours, ref, [q for q, _ in QA], [t for _, t in QA], padding=True, truncation="only_second",
               max_length=64)
    _same_call(ours, ref, [t for _, t in QA], [q for q, _ in QA], truncation="only_first", max_length=48)
    encoded = _same_call(ours, ref, first, second, truncation="longest_first", max_length=24, padding=True,
                         return_special_tokens_mask=True)
    _same_call(ours, ref, first, second, truncation=True, max_length=17, padding=True, add_special_tokens=False,
               return_token_type_ids=True)
    same_decoding(ours, ref, encoded["input_ids"])
    words = [text.split() for text in SHORT[:30] if text.split()]
    _same_call(ours, ref, words, is_split_into_words=True, padding=True, return_tensors="np")


def test_overflow_rows_hold_what_the_reference_cuts(tokenizers):
    ours, ref = tokenizers
    for text in [t for t in TEXTS if len(t) > 300][:6]:
        theirs = ref(text, truncation=True, max_length=20, return_overflowing_tokens=True)
        mine = ours(text, truncation=True, max_length=20, return_overflowing_tokens=True)
        assert mine["input_ids"][0] == theirs["input_ids"]
        assert [index for row in mine["input_ids"][1:] for index in row[1:-1]] == theirs["overflowing_tokens"]
        assert set(mine["overflow_to_sample_mapping"]) == {0}
    cut = 0
    for question, passage in QA[:6]:
        theirs = ref(question, passage, truncation="only_second", max_length=24, return_overflowing_tokens=True)
        cut += len(theirs.get("overflowing_tokens", []))
        mine = ours(question, passage, truncation="only_second", max_length=24, return_overflowing_tokens=True)
        assert mine["input_ids"][0] == theirs["input_ids"]
        start = theirs["input_ids"].index(ref.sep_token_id) + 1
        assert [index for row in mine["input_ids"][1:] for index in row[start:-1]] == \
            theirs.get("overflowing_tokens", [])
    assert cut > 0
    with pytest.raises(ValueError, match="longest_first"):
        ref("a first text", "and a second one", truncation=True, max_length=6, return_overflowing_tokens=True)
    with pytest.raises(TokenizerError, match="longest_first"):
        ours("a first text", "and a second one", truncation=True, max_length=6, return_overflowing_tokens=True)


def test_languages(tokenizers):
    """Calls segment as English whatever `lang` they pass, as in transformers; `_tokenize` follows `lang`."""
    ours, ref = tokenizers
    assert ref._tokenize(LANGUAGE_TEXTS[0], lang="ro") != ref._tokenize(LANGUAGE_TEXTS[0], lang="en")
    for text in LANGUAGE_TEXTS:
        for lang in ("fr", "ro", "de"):
            assert ours(text, lang=lang)["input_ids"] == ref(text, lang=lang)["input_ids"] == ref(text)["input_ids"]
        for lang in ("en", "fr", "de", "ro", "cs"):
            assert ours._tokenize(text, lang=lang) == ref._tokenize(text, lang=lang), lang
        assert ours._tokenize(text, bypass_tokenizer=True) == ref._tokenize(text, bypass_tokenizer=True)
        assert ours.moses_pipeline(text, "fr") == ref.moses_pipeline(text, "fr")
        assert ours.moses_punct_norm(text, "de") == ref.moses_punct_norm(text, "de")
        assert ours.moses_tokenize(text, "en") == ref.moses_tokenize(text, "en")
    with pytest.raises(TokenizerError, match="bypass_tokenizer=True"):
        ours._tokenize("我爱自然语言处理。", lang="zh")


def test_without_lowercasing(folders):
    ours, ref = auto_pair(folders["engine-bpe"], do_lowercase_and_remove_accent=False)
    assert ours.do_lower_case is False and ref.do_lower_case is False
    assert ours(TEXTS)["input_ids"] == ref(TEXTS)["input_ids"]
    ours.do_lowercase_and_remove_accent = ref.do_lowercase_and_remove_accent = True
    assert ours(SHORT)["input_ids"] == ref(SHORT)["input_ids"]


def test_save_round_trips(folders, tmp_path):
    for kind in KINDS:
        ours, ref = auto_pair(folders[kind])
        ours.save_pretrained(tmp_path / f"ours-{kind}")
        ref.save_pretrained(tmp_path / f"ref-{kind}")
        assert {"vocab.json", "merges.txt"} <= {path.name for path in (tmp_path / f"ours-{kind}").iterdir()}
        assert not (tmp_path / f"ours-{kind}" / "tokenizer.json").exists()
        expected = ref(TEXTS)["input_ids"]
        for folder in (tmp_path / f"ours-{kind}", tmp_path / f"ref-{kind}"):
            mine, theirs = auto_pair(folder)
            assert type(mine) is leanformers.XLMTokenizer and type(theirs) is transformers.XLMTokenizer
            assert mine(TEXTS)["input_ids"] == expected
            assert theirs(SHORT)["input_ids"] == ref(SHORT)["input_ids"]
            assert mine.special_tokens_map == ref.special_tokens_map and len(mine) == len(ref)


def test_language_maps(tmp_path, trained):
    vocab, merges = trained
    lines = "".join(f"{a} {b}\n" for a, b in merges)
    maps = {"lang2id": {"en": 0, "fr": 1}, "id2lang": {"0": "en", "1": "fr"}}
    ours, ref = auto_pair(_write_folder(tmp_path / "maps", vocab, lines, maps))
    assert ours.lang2id == ref.lang2id and ours.id2lang == ref.id2lang
    ours.save_pretrained(tmp_path / "saved")
    again, theirs = auto_pair(tmp_path / "saved")
    assert again.lang2id == theirs.lang2id == ref.lang2id and again.id2lang == theirs.id2lang == ref.id2lang
    bad = {"lang2id": {"en": 0, "fr": 1}, "id2lang": {"0": "en"}}
    with pytest.raises(TokenizerError, match="lang2id"):
        leanformers.AutoTokenizer.from_pretrained(_write_folder(tmp_path / "bad", vocab, lines, bad))


def test_added_tokens(folders, tmp_path):
    ours, ref = auto_pair(folders["engine-bpe"])
    text = "a NewWord and newword, XyZ xyz <lang_fr>x<lang_fr> done"
    for tokenizer in (ours, ref):
        assert tokenizer.add_tokens(["NewWord", AddedToken("XyZ", lstrip=True)]) == 2
        assert tokenizer.add_tokens(["<lang_fr>"], special_tokens=True) == 1
    assert len(ours) == len(ref) and ours.get_vocab() == ref.get_vocab()
    assert {index: (token.content, token.special) for index, token in ours.added_tokens_decoder.items()} == \
        {index: (token.content, token.special) for index, token in ref.added_tokens_decoder.items()}
    ids = ref(text)["input_ids"]
    assert ours(text)["input_ids"] == ids
    assert ours.decode(ids) == ref.decode(ids) and ours.tokenize(text) == _as_ours(ref, ref.tokenize(text))
    ours.save_pretrained(tmp_path / "added")
    mine, theirs = auto_pair(tmp_path / "added")
    assert mine(text)["input_ids"] == theirs(text)["input_ids"] == ids


def test_pickle_and_copy(tokenizers):
    ours, ref = tokenizers
    expected = ref(SHORT)["input_ids"]
    for clone in (pickle.loads(pickle.dumps(ours)), copy.deepcopy(ours)):
        assert type(clone) is leanformers.XLMTokenizer
        assert clone(SHORT)["input_ids"] == expected
        assert clone.batch_decode(expected) == ref.batch_decode(expected)
    assert ours(SHORT)["input_ids"] == expected  # the original still works


def test_missing_sacremoses_names_the_extra(folders, monkeypatch):
    monkeypatch.setitem(sys.modules, "sacremoses", None)  # import sacremoses -> ImportError
    with pytest.raises(TokenizerError, match=r'pip install "leanformers\[xlm\]"'):
        leanformers.AutoTokenizer.from_pretrained(str(folders["engine-bpe"]))


def test_bad_files(folders, tmp_path):
    with pytest.raises(TokenizerError, match="merges_file="):
        leanformers.XLMTokenizer()
    with pytest.raises(ResourceNotFoundError, match="merges.txt"):
        leanformers.XLMTokenizer(folders["fastbpe"] / "vocab.json", tmp_path / "missing.txt")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        leanformers.XLMTokenizer(tokenizer_file=str(tmp_path / "tokenizer.json"))
