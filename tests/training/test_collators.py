"""Data collators produce the reference collators' batches on the same examples (MLM masks token for token)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import MINILM, fixture_path

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Hello world!", "Tokenisers pad; collators batch.",
         "A much longer sentence, with punctuation, numbers like 1234 and several clauses, to force padding."]


@pytest.fixture(scope="module")
def tokenizers():
    import transformers

    import leanformers

    folder = fixture_path(*MINILM)
    return leanformers.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


def _assert_same_batch(ours, theirs):
    assert set(ours.keys()) == set(theirs.keys())
    for key in theirs.keys():
        if theirs[key] is None:
            assert ours[key] is None
            continue
        assert isinstance(ours[key], torch.Tensor), key
        assert ours[key].dtype == theirs[key].dtype, key
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0, msg=key)


def _features(tokenizer, **kwargs):
    return [dict(tokenizer(text, **kwargs)) for text in TEXTS]


def _both(name, tokenizers, features_fn, call_kwargs=None, **collator_kwargs):
    import transformers

    import leanformers

    batches = []
    for lib, tokenizer in zip((leanformers, transformers), tokenizers):
        collator = getattr(lib, name)(tokenizer, **collator_kwargs)
        batches.append(collator(features_fn(tokenizer), **(call_kwargs or {})))
    return batches


def test_padding_collator(tokenizers):
    def features(tok):
        return [{**f, "label": i % 3} for i, f in enumerate(_features(tok))]

    _assert_same_batch(*_both("DataCollatorWithPadding", tokenizers, features))
    _assert_same_batch(*_both("DataCollatorWithPadding", tokenizers, features, pad_to_multiple_of=8))
    _assert_same_batch(*_both("DataCollatorWithPadding", tokenizers, features, padding="max_length", max_length=40))


def test_token_classification_collator(tokenizers):
    def features(tok):
        rows = _features(tok)
        return [{**f, "labels": [(i + j) % 5 for j in range(len(f["input_ids"]))]} for i, f in enumerate(rows)]

    _assert_same_batch(*_both("DataCollatorForTokenClassification", tokenizers, features))
    _assert_same_batch(*_both("DataCollatorForTokenClassification", tokenizers, features, pad_to_multiple_of=16,
                              label_pad_token_id=-1))


def test_seq2seq_collator(tokenizers):
    def features(tok):
        rows = _features(tok)
        return [{**f, "labels": list(range(3, 3 + 2 * i + 1))} for i, f in enumerate(rows)]

    _assert_same_batch(*_both("DataCollatorForSeq2Seq", tokenizers, features))
    _assert_same_batch(*_both("DataCollatorForSeq2Seq", tokenizers, features, pad_to_multiple_of=4))


@pytest.mark.parametrize("seed", [None, 5])
def test_masked_lm_collator_masks_token_for_token(tokenizers, seed):
    """80/10/10 masking of 15% of the tokens, from the collator's own generator (seed) or torch's global RNG."""
    import transformers

    import leanformers

    batches = []
    for lib, tokenizer in zip((leanformers, transformers), tokenizers):
        collator = lib.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.4, seed=seed)
        torch.manual_seed(11)
        batches.append([collator(_features(tokenizer)) for _ in range(3)])
    for ours, theirs in zip(*batches):
        _assert_same_batch(ours, theirs)
    labels = batches[0][0]["labels"]
    assert (labels != -100).any() and (labels == -100).any()
    assert (batches[0][0]["input_ids"] == tokenizers[0].mask_token_id).any()


def test_masked_lm_collator_with_special_tokens_mask_and_lists(tokenizers):
    import transformers

    import leanformers

    def features(tok):
        return _features(tok, return_special_tokens_mask=True)

    batches = []
    for lib, tokenizer in zip((leanformers, transformers), tokenizers):
        collator = lib.DataCollatorForLanguageModeling(tokenizer, seed=1, mask_replace_prob=0.5,
                                                       random_replace_prob=0.3, pad_to_multiple_of=8)
        id_lists = [f["input_ids"] for f in _features(tokenizer)]
        batches.append((collator(features(tokenizer)), collator(id_lists)))
    for ours, theirs in zip(*batches):
        _assert_same_batch(ours, theirs)


def test_causal_lm_collator(tokenizers):
    _assert_same_batch(*_both("DataCollatorForLanguageModeling", tokenizers, _features, mlm=False))


def test_default_collator():
    import transformers

    import leanformers

    cases = [
        [{"input_ids": [1, 2, 3], "label": 1}, {"input_ids": [4, 5, 6], "label": 0}],
        [{"x": np.ones(3, dtype=np.float32), "label": 0.5, "text": "dropped"},
         {"x": np.zeros(3, dtype=np.float32), "label": 1.5, "text": "dropped"}],
        [{"input_ids": torch.tensor([1, 2]), "label_ids": [0, 1]}, {"input_ids": torch.tensor([3, 4]),
                                                                    "label_ids": [1, 1]}],
        [{"pixel": torch.ones(2, 2), "label_ids": torch.tensor([1.0, 0.0])},
         {"pixel": torch.zeros(2, 2), "label_ids": torch.tensor([0.0, 1.0])}],
    ]
    for features in cases:
        _assert_same_batch(leanformers.default_data_collator(features), transformers.default_data_collator(features))
        _assert_same_batch(leanformers.DefaultDataCollator()(features), transformers.DefaultDataCollator()(features))


def test_collator_errors_name_the_fix(tokenizers):
    import leanformers
    from leanformers.errors import ConfigError

    with pytest.raises(ConfigError, match="mlm=False"):
        leanformers.DataCollatorForLanguageModeling(_NoMask(tokenizers[0]))
    with pytest.raises(ConfigError, match="mlm_probability"):
        leanformers.DataCollatorForLanguageModeling(tokenizers[0], mlm_probability=1.5)
    with pytest.raises(ConfigError, match="return_tensors='pt'"):
        leanformers.default_data_collator([{"a": 1}], return_tensors="np")


class _NoMask:
    """A tokenizer stand-in without a mask token."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.mask_token = None
