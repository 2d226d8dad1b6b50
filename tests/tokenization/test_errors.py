"""Bad input raises a TokenizerError (a ValueError) or ResourceNotFoundError whose message names the fix; where the
reference refuses the same input, it is checked to refuse it too."""

from __future__ import annotations

import pytest
import transformers

import leanformers
import leanformers.tokenization as lt
from leanformers.errors import ConfigError, ResourceNotFoundError, TokenizerError

from .conftest import TEXTS

CALLS = {
    "number": ((123,), {}, "must be a str"),
    "nothing": ((), {}, "pass `text`"),
    "pair_str_for_batch": ((TEXTS[:2], "one"), {}, "list of second sequences"),
    "pair_length": ((TEXTS[:2], TEXTS[:3]), {}, "one second sequence per example"),
    "padding_name": ((TEXTS[0],), {"padding": "longer"}, "'longest'"),
    "truncation_name": ((TEXTS[0],), {"truncation": "first"}, "'only_first'"),
    "padding_side": ((TEXTS[:2],), {"padding": True, "padding_side": "middle"}, "'right' or 'left'"),
    "only_second_single": ((TEXTS[3],), {"truncation": "only_second", "max_length": 5}, "only_second needs pairs"),
    "stride": ((TEXTS[3],), {"truncation": True, "max_length": 6, "stride": 6, "return_overflowing_tokens": True},
               "stride"),
    "multiple_of": ((TEXTS[:2],), {"padding": True, "truncation": True, "max_length": 10, "pad_to_multiple_of": 8},
                    "multiple of"),
}


@pytest.mark.parametrize("case", CALLS)
def test_bad_calls_raise_tokenizer_error(pairs, case):
    ref, ours = pairs["minilm"]
    args, options, fix = CALLS[case]
    with pytest.raises(TokenizerError, match=fix) as caught:
        ours(*args, **options)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(BaseException):  # the reference refuses it too (ValueError, TypeError or a Rust panic)
        ref(*args, **options)


def test_padding_without_pad_token(gpt2_dirs):
    ref = transformers.GPT2Tokenizer.from_pretrained(str(gpt2_dirs[1]))
    ours = lt.GPT2TokenizerFast.from_pretrained(gpt2_dirs[1])
    for call in (lambda tok: tok(TEXTS, padding=True), lambda tok: tok.pad([tok(TEXTS[0]), tok(TEXTS[1])])):
        with pytest.raises(ValueError):
            call(ref)
        with pytest.raises(TokenizerError, match="add_special_tokens"):
            call(ours)


def test_unsupported_tensor_type(pairs):
    _, ours = pairs["minilm"]
    with pytest.raises(TokenizerError, match="return_tensors='pt'"):
        ours(TEXTS[0], return_tensors="tf")
    with pytest.raises(TokenizerError, match="'pt'"):
        ours(TEXTS[0], return_tensors="torch")


def test_bad_special_token_requests(fresh):
    _, ours = fresh("minilm")
    with pytest.raises(TokenizerError, match="special token name"):
        ours.add_special_tokens({"foo_token": "<foo>"})
    with pytest.raises(TokenizerError, match="list of str"):
        ours.add_special_tokens({"additional_special_tokens": "<a>"})
    with pytest.raises(TokenizerError, match="str or an AddedToken"):
        ours.pad_token = 3.5
    with pytest.raises(TokenizerError, match="already hold both"):
        ours.get_special_tokens_mask([1, 2], [3], already_has_special_tokens=True)
    with pytest.raises(TokenizerError, match="input_ids"):
        ours.pad({"attention_mask": [[1]]})


def test_missing_files_and_classes(tmp_path, minilm_path):
    with pytest.raises(ResourceNotFoundError, match="Check the path"):
        lt.BertTokenizerFast.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ResourceNotFoundError, match="vocab.txt"):
        lt.BertTokenizerFast.from_pretrained(tmp_path)
    with pytest.raises(ResourceNotFoundError, match="tokenizer.json"):
        lt.PreTrainedTokenizerFast.from_pretrained(tmp_path)
    with pytest.raises(ResourceNotFoundError, match="offline"):
        lt.BertTokenizerFast.from_pretrained("org/not-cached", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(TokenizerError, match="tokenizer_file="):
        lt.PreTrainedTokenizerFast()
    with pytest.raises(ResourceNotFoundError, match="No tokenizer file"):
        lt.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    with pytest.raises(ConfigError, match="trust_remote_code"):
        leanformers.AutoTokenizer.from_pretrained(minilm_path, trust_remote_code=True)
    with pytest.raises(ConfigError, match="trust_remote_code"):
        lt.BertTokenizerFast.from_pretrained(minilm_path, trust_remote_code=True)
    with pytest.raises(TokenizerError, match="leanformers has"):
        lt.tokenizer_class("NopeTokenizer")
    with pytest.raises(TokenizerError, match="folder path"):
        lt.BertTokenizerFast.from_pretrained(minilm_path).save_pretrained(minilm_path / "vocab.txt")


def test_bad_init_options(minilm_path):
    with pytest.raises(TokenizerError, match="'right' or 'left'"):
        lt.BertTokenizerFast.from_pretrained(minilm_path, padding_side="up")
    with pytest.raises(TokenizerError, match="str or an AddedToken"):
        lt.BertTokenizerFast.from_pretrained(minilm_path, pad_token=1.5)
    with pytest.raises(TokenizerError, match="extra_ids"):
        lt.T5TokenizerFast(tokenizer_file=str(minilm_path / "tokenizer.json"), extra_ids=3,
                           additional_special_tokens=["<extra_id_0>"])
