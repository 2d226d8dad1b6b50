"""fill-mask against transformers 5.24 on a tiny model and on the real SPLADE-tiny: scores, tokens, token strings,
completed sequences, several masks, top_k, targets; single and batched, with and without length sorting."""

from __future__ import annotations

import pytest

import leanformers
from leanformers.pipelines import PipelineException, PipelineInputError

from .conftest import BATCHING, assert_same

TEXTS = ["the cat [MASK] on the mat .", "hello [MASK] !", "paris is the [MASK] of [MASK] .",
         "where do i work ? i work in [MASK] , my name is sylvain"]

CASES = {
    "one-mask": (TEXTS[0], {}),
    "texts": (TEXTS, {}),
    "list-of-one": ([TEXTS[1]], {}),
    "two-masks": (TEXTS[2], {"top_k": 2}),
    "top-k": (TEXTS[:2], {"top_k": 7}),
    "targets": (TEXTS, {"targets": ["cat", "world", "paris", "mat"]}),
    "targets-top-k": (TEXTS[0], {"targets": ["cat", "sat"], "top_k": 5}),
    "tokenizer-kwargs": (TEXTS[3], {"tokenizer_kwargs": {"truncation": True, "max_length": 11}}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs):
    inputs, kwargs = CASES[case]
    expected = theirs("fill-mask", "bert-mlm")(inputs, **kwargs)
    assert_same(ours("fill-mask", "bert-mlm")(inputs, **kwargs, **BATCHING[batching]), expected)


REAL_TEXTS = ["Paris is the [MASK] of France.", "The quick brown [MASK] jumps over the lazy dog.",
              "Machine learning models need a lot of [MASK] to train well, and [MASK] too."]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_splade_tiny_matches_reference(splade_dir, reference, batch_size):
    expected = reference("fill-mask", model=str(splade_dir), device="cpu")(REAL_TEXTS, top_k=4)
    pipe = leanformers.pipeline("fill-mask", model=str(splade_dir), device="cpu")
    assert_same(pipe(REAL_TEXTS, top_k=4, batch_size=batch_size), expected)


def test_no_mask_token_in_the_input(ours):
    with pytest.raises(PipelineException, match=r"No mask_token \(\[MASK\]\) found"):
        ours("fill-mask", "bert-mlm")("there is nothing to fill here")


@pytest.mark.parametrize("bad, message", [("", "empty string"), (None, "None")])
def test_bad_input_is_a_clear_error(ours, bad, message):
    with pytest.raises(PipelineInputError, match=message):
        ours("fill-mask", "bert-mlm")(bad)
