"""zero-shot-classification against transformers 5.24: labels sorted by score, single- and multi-label scores,
hypothesis templates, the entailment id read from the config; single and batched, with and without sorting."""

from __future__ import annotations

import pytest

from leanformers.pipelines import PipelineInputError

from .conftest import BATCHING, assert_same

TEXTS = ["the cat sat on the mat .", "paris is the capital of france", "hello world"]
LABELS = ["cat", "paris", "world", "great"]

CASES = {
    "one": (TEXTS[0], (LABELS,), {}),
    "texts": (TEXTS, (), {"candidate_labels": LABELS}),
    "multi-label": (TEXTS, (), {"candidate_labels": LABELS, "multi_label": True}),
    "one-label": (TEXTS[1], (["paris"],), {}),
    "comma-labels": (TEXTS[:2], (), {"candidate_labels": "cat, paris ,world"}),
    "template": (TEXTS, (), {"candidate_labels": LABELS[:3], "hypothesis_template": "it is about {} ."}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs):
    inputs, args, kwargs = CASES[case]
    expected = theirs("zero-shot-classification", "bert-nli")(inputs, *args, **kwargs)
    result = ours("zero-shot-classification", "bert-nli")(inputs, *args, **kwargs, **BATCHING[batching])
    assert_same(result, expected)


def test_entailment_id_comes_from_the_config(ours):
    assert ours("zero-shot-classification", "bert-nli").entailment_id == 2
    assert ours("zero-shot-classification", "bert-nli-unnamed").entailment_id == -1


@pytest.mark.parametrize("inputs, kwargs, message", [
    (TEXTS[0], {"candidate_labels": []}, "at least one label"),
    (TEXTS[0], {"candidate_labels": " , "}, "at least one label"),
    (TEXTS[0], {}, "candidate_labels"),
    ("", {"candidate_labels": LABELS}, "empty string"),
    (None, {"candidate_labels": LABELS}, "None"),
    (TEXTS[0], {"candidate_labels": LABELS, "hypothesis_template": "no slot"}, "has no {}"),
    (TEXTS[0], {"candidate_labels": LABELS, "multi_lable": True}, r"Unknown arguments \['multi_lable'\]"),
])
def test_bad_input_is_a_clear_error(ours, inputs, kwargs, message):
    with pytest.raises(PipelineInputError, match=message):
        ours("zero-shot-classification", "bert-nli")(inputs, **kwargs)
