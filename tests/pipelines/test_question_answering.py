"""question-answering against transformers 4.55: spans, scores, offsets, long contexts cut into spans, top_k,
impossible answers, word alignment, batched questions; single and batched, with and without length sorting."""

from __future__ import annotations

import pytest

from leanformers.pipelines import PipelineInputError

from .conftest import assert_same
from .legacy_cases import CASES, CONTEXT, LONG_CONTEXT, QUESTIONS, plain

QA_CASES = [case for case in CASES if case.startswith("qa-")]
BATCHING = {"one-by-one": {}, "batched-sorted": {"batch_size": 3},
            "batched-in-order": {"batch_size": 3, "sort_by_length": False}}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", QA_CASES)
def test_matches_legacy_reference(case, batching, ours, legacy):
    task, model, init, args, kwargs = CASES[case]
    result = ours(task, model, **init)(*args, **kwargs, **BATCHING[batching])
    assert_same(plain(result), legacy[case])


def test_generator_of_dicts_streams(ours, legacy):
    pipe = ours("question-answering", "bert-qa")
    items = ({"question": q, "context": c} for q, c in zip(QUESTIONS, [CONTEXT, LONG_CONTEXT, CONTEXT]))
    stream = pipe(items, batch_size=2)
    assert not isinstance(stream, list)
    expected = legacy["qa-dicts"]
    results = list(stream)
    assert_same(results[:2], expected[:2])


@pytest.mark.parametrize("kwargs, message", [
    ({"question": "", "context": CONTEXT}, "empty"),
    ({"question": None, "context": CONTEXT}, "None"),
    ({"question": QUESTIONS[0], "context": ""}, "empty"),
    ({"question": ["a", "b"], "context": [CONTEXT]}, "2 questions but 1 contexts"),
    ({"question": QUESTIONS[0], "context": CONTEXT, "top_k": 0}, "top_k"),
    ({"question": QUESTIONS[0], "context": CONTEXT, "max_seq_len": 10, "doc_stride": 20}, "doc_stride"),
])
def test_bad_input_is_a_clear_error(ours, kwargs, message):
    with pytest.raises(PipelineInputError, match=message):
        ours("question-answering", "bert-qa")(**kwargs)


def test_question_longer_than_the_room_left_for_the_context(ours):
    question = "where do i work and what is my name and what is the capital of france ?"
    with pytest.raises(PipelineInputError, match=r"question takes \d+ tokens.*max_seq_len=20"):
        ours("question-answering", "bert-qa")(question=question, context=CONTEXT, max_seq_len=20, doc_stride=4)
