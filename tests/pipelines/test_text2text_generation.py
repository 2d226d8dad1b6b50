"""summarization, translation and text2text-generation against transformers 4.55: generated text and token ids,
generation settings layered from the pipeline defaults, the model, construction keywords, task_specific_params
(with their input prefix) and the call; single and batched, with and without length sorting."""

from __future__ import annotations

import pytest

from .conftest import assert_same
from .legacy_cases import CASES, plain

GENERATION_CASES = [case for case in CASES if not case.startswith("qa-")]
BATCHING = {"one-by-one": {}, "batched-sorted": {"batch_size": 2},
            "batched-in-order": {"batch_size": 3, "sort_by_length": False}}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", GENERATION_CASES)
def test_matches_legacy_reference(case, batching, ours, legacy):
    task, model, init, args, kwargs = CASES[case]
    result = ours(task, model, **init)(*args, **kwargs, **BATCHING[batching])
    assert_same(plain(result), legacy[case])
