"""text-classification / sentiment-analysis against transformers 5.24: labels and scores, top_k, function_to_apply,
text pairs, regression heads; single and batched, with and without length sorting."""

from __future__ import annotations

import pytest

from leanformers.pipelines import PipelineInputError

from .conftest import BATCHING, assert_same

TEXTS = ["the cat sat on the mat .", "hello world", "where do i work ? my name is sylvain and i work in brooklyn",
         "paris is great !", "the capital of france is paris , and paris is great . the cat sat on the mat ."]
PAIR = {"text": "where do i work ?", "text_pair": "i work in brooklyn"}

CASES = {
    "one-text": ("bert-cls", {}, TEXTS[0], {}),
    "texts": ("bert-cls", {}, TEXTS, {}),
    "top-k-none": ("bert-cls", {}, TEXTS, {"top_k": None}),
    "top-k-2": ("bert-cls", {}, TEXTS[2], {"top_k": 2}),
    "sigmoid": ("bert-cls", {}, TEXTS, {"function_to_apply": "sigmoid", "top_k": 3}),
    "no-function": ("bert-cls", {}, TEXTS[:2], {"function_to_apply": "none"}),
    "pair": ("bert-cls", {}, PAIR, {}),
    "pairs": ("bert-cls", {}, [PAIR, {"text": TEXTS[3], "text_pair": TEXTS[1]}, [[TEXTS[0], TEXTS[4]]]], {}),
    "construction-top-k": ("bert-cls", {"top_k": 2}, TEXTS[1], {}),
    "regression": ("bert-regression", {}, TEXTS, {}),
    "truncation": ("bert-cls", {}, TEXTS[4], {"truncation": True, "max_length": 6}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs):
    model, init, inputs, kwargs = CASES[case]
    expected = theirs("text-classification", model, **init)(inputs, **kwargs)
    result = ours("sentiment-analysis", model, **init)(inputs, **kwargs, **BATCHING[batching])
    assert_same(result, expected)


def test_batched_reference_agrees_too(ours, theirs):
    """The reference pads batches in input order; the results are the same as ours, sorted or not."""
    expected = theirs("text-classification", "bert-cls")(TEXTS, batch_size=2, top_k=None)
    assert_same(ours("text-classification", "bert-cls")(TEXTS, batch_size=2, top_k=None), expected)


@pytest.mark.parametrize("bad, message", [
    ("", "empty string"), ("   ", "empty string"), (None, "None"), (["fine", ""], "input #1 is an empty"),
    ([["a", "b"]], "text pair"), ({"text_pair": "x"}, "without 'text'"),
])
def test_bad_input_is_a_clear_error(ours, bad, message):
    with pytest.raises(PipelineInputError, match=message):
        ours("text-classification", "bert-cls")(bad)


def test_unknown_function_to_apply(ours):
    with pytest.raises(PipelineInputError, match="function_to_apply='tanh'"):
        ours("text-classification", "bert-cls")(TEXTS[0], function_to_apply="tanh")
