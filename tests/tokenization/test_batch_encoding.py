"""BatchEncoding: a dict with attribute access, tensors built from arrays, `.to`, pickling, indexing, and the
errors of ragged tensors; checked against the reference's BatchEncoding where it has the same behaviour."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from leanformers.errors import TokenizerError
from leanformers.tokenization import BatchEncoding, CharSpan, TokenSpan

from .conftest import TEXTS, assert_same_output


def test_dict_behaviour_and_attribute_access(pairs):
    _, ours = pairs["minilm"]
    out = ours(TEXTS[:2], padding=True, return_tensors="pt")
    assert isinstance(out, dict) and isinstance(out, BatchEncoding)
    assert out.input_ids is out["input_ids"] and out.data is out
    assert set(dict(**out)) == {"input_ids", "token_type_ids", "attention_mask"}
    with pytest.raises(AttributeError):
        _ = out.labels
    assert out.is_fast and out.n_sequences == 1
    assert out[0] is out.encodings[0]
    assert out[:1] == out.encodings[:1]  # with encodings, integers and slices index them (as in transformers)
    assert "input_ids" in repr(out)


@pytest.mark.parametrize("tensors", [None, "pt"])
def test_printed_like_the_reference(pairs, tensors):
    reference, ours = pairs["minilm"]
    theirs, mine = (tok(TEXTS[:2], padding=True, return_tensors=tensors) for tok in (reference, ours))
    assert repr(mine) == repr(theirs) and str(mine) == str(theirs)


def test_plain_batch_encoding_has_no_alignment():
    out = BatchEncoding({"input_ids": [[1, 2], [3, 4]]}, tensor_type="np")
    assert out.encodings is None and not out.is_fast and out.n_sequences is None
    assert out["input_ids"].dtype == np.int64 and out[1:]["input_ids"].tolist() == [[3, 4]]
    with pytest.raises(TokenizerError, match="encodings of a tokenizer call"):
        out.word_ids()
    with pytest.raises(KeyError):
        _ = out[0]
    assert BatchEncoding({"input_ids": [1, 2]}, tensor_type="pt", prepend_batch_axis=True)["input_ids"].shape == (1, 2)


def test_tensors_come_from_arrays_with_int64(pairs):
    _, ours = pairs["gpt2"]
    out = ours(TEXTS, padding=True, return_tensors="pt", return_offsets_mapping=True)
    assert all(value.dtype == torch.int64 for value in out.values())
    assert out["offset_mapping"].shape == (*out["input_ids"].shape, 2)
    again = ours(TEXTS, padding=True).convert_to_tensors("pt")
    assert torch.equal(again["input_ids"], out["input_ids"])


def test_to_device_moves_tensors_and_refuses_dtypes(pairs):
    _, ours = pairs["minilm"]
    out = ours(TEXTS[:2], padding=True, return_tensors="pt")
    assert out.to("cpu") is out and out.to(torch.device("cpu")) is out
    assert out["input_ids"].device.type == "cpu"
    with pytest.raises(TokenizerError, match="device"):
        out.to(torch.float16)


@pytest.mark.parametrize("kind", ["minilm", "roberta"])
def test_ragged_tensors_need_padding(pairs, kind):
    ref, ours = pairs[kind]
    with pytest.raises(TokenizerError, match=r"padding=True") as caught:
        ours(TEXTS, return_tensors="pt")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError):
        ref(TEXTS, return_tensors="pt")
    assert_same_output(ours(TEXTS, return_tensors="np"), ref(TEXTS, return_tensors="np"))
    with pytest.raises(TokenizerError, match="padding=True"):
        BatchEncoding({"input_ids": [[1, 2], [3]]}, tensor_type="pt")


def test_max_length_padding_without_truncation_keeps_long_rows(pairs):
    ref, ours = pairs["minilm"]
    options = {"padding": "max_length", "max_length": 6}
    assert_same_output(ours(TEXTS, **options, return_tensors="np"), ref(TEXTS, **options, return_tensors="np"))
    with pytest.raises(TokenizerError, match="padding=True"):
        ours(TEXTS, **options, return_tensors="pt")


def test_pickle_and_copy_keep_values_and_encodings(pairs):
    _, ours = pairs["minilm"]
    out = ours(TEXTS[:3], padding=True, return_tensors="pt")
    for clone in (pickle.loads(pickle.dumps(out)), copy.deepcopy(out), copy.copy(out)):
        assert isinstance(clone, BatchEncoding) and list(clone) == list(out)
        assert all(torch.equal(clone[key], out[key]) for key in out)
        assert clone.word_ids(1) == out.word_ids(1) and clone.n_sequences == out.n_sequences


def test_spans_are_named_tuples(pairs):
    _, ours = pairs["minilm"]
    out = ours(TEXTS[0])
    assert isinstance(out.token_to_chars(1), CharSpan) and isinstance(out.word_to_tokens(0), TokenSpan)
    assert out.token_to_chars(0) is None
    assert out.token_to_word(-1) is None and out.token_to_word(1) == 0


def test_import_is_cheap():
    code = ("import sys, leanformers.tokenization as t; t.tokenizer_class_name; "
            "print('torch' in sys.modules, 'tokenizers' in sys.modules, 'numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "False"]


def test_tokenizing_to_lists_and_arrays_never_imports_torch(minilm_path):
    code = (f"import sys; from leanformers import AutoTokenizer; "
            f"t = AutoTokenizer.from_pretrained({str(minilm_path)!r});"
            f" t(['a b', 'c'], padding=True, return_tensors='np'); t.decode(t('x')['input_ids']);"
            f" print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False"]
