"""feature-extraction against transformers 5.24 on a tiny BERT and on the real all-MiniLM-L6-v2: the hidden states
of every token, as nested lists or tensors; single and batched (each result keeps its own length)."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers.pipelines import PipelineInputError

from .conftest import BATCHING, assert_same

TEXTS = ["the cat sat on the mat .", "hello world", "where do i work ? my name is sylvain and i work in brooklyn"]


@pytest.mark.parametrize("batching", list(BATCHING))
def test_tiny_matches_reference(batching, ours, theirs):
    expected = theirs("feature-extraction", "bert-base")(TEXTS)
    result = ours("feature-extraction", "bert-base")(TEXTS, **BATCHING[batching])
    assert_same(result, expected)
    assert [len(r[0]) for r in result] == [len(e[0]) for e in expected]  # no padding leaks into a result


def test_tensors_and_truncation(ours, theirs):
    expected = theirs("feature-extraction", "bert-base")(TEXTS[2], return_tensors=True, truncation=True,
                                                         tokenize_kwargs={"max_length": 5})
    result = ours("feature-extraction", "bert-base")(TEXTS[2], return_tensors=True, truncation=True,
                                                      tokenize_kwargs={"max_length": 5})
    assert result.shape == expected.shape == (1, 5, 32)
    assert_same(result, expected)


REAL_TEXTS = ["A man is playing a guitar on stage.", "Quarterly earnings dropped and shares slid.", "short"]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_minilm_matches_reference(minilm_dir, reference, batch_size):
    expected = reference("feature-extraction", model=str(minilm_dir), device="cpu")(REAL_TEXTS, return_tensors=True)
    pipe = leanformers.pipeline("feature-extraction", model=str(minilm_dir), device="cpu")
    for ours, theirs in zip(pipe(REAL_TEXTS, return_tensors=True, batch_size=batch_size), expected):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_truncation_given_twice(ours):
    with pytest.raises(PipelineInputError, match="truncation was given twice"):
        ours("feature-extraction", "bert-base")(TEXTS[0], truncation=True, tokenize_kwargs={"truncation": True})
