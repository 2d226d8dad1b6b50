"""Stopping criteria against the reference ones, stop strings on the real GPT-2 vocabulary included."""

from __future__ import annotations

import random
import time

import pytest
import torch

from leanformers.errors import ConfigError
from leanformers.generation import stopping_criteria as ours

STOPS = [" Paris", "end.", "\n\n", "é!", "ing", "x"]
PIECES = ["The", " capital", " is", " Paris", " Par", "is", "end", ".", "\n", "\n\n", " café", "!", "é", " sing",
          "ing", "in", "g", " box", "x", " the", " end."]


def _corpus(tokenizer, count=60, seed=0):
    rng = random.Random(seed)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 6))) for _ in range(count)]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def _all_prefixes(sequences):
    for ids in sequences:
        for end in range(1, len(ids) + 1):
            yield ids[:end]


@pytest.mark.parametrize("which", ["reference", "ours"])
def test_stop_strings_match_reference(which, reference_tokenizer, our_tokenizer, request):
    from transformers.generation.stopping_criteria import StopStringCriteria as Theirs

    tokenizer = reference_tokenizer if which == "reference" else our_tokenizer
    theirs = Theirs(reference_tokenizer, STOPS)
    mine = ours.StopStringCriteria(tokenizer, STOPS)
    prefixes = list(_all_prefixes(_corpus(reference_tokenizer)))
    width = max(len(p) for p in prefixes)
    batch = torch.tensor([[0] * (width - len(p)) + p for p in prefixes])  # left-padded with "!" tokens
    expected = theirs(batch, None)
    assert 10 < int(expected.sum()) < len(prefixes)  # the corpus exercises both outcomes
    assert torch.equal(mine(batch, None), expected)


def test_length_time_and_eos_criteria_match_reference():
    from transformers.generation import stopping_criteria as theirs

    ids = torch.tensor([[1, 2, 3, 9], [4, 5, 6, 7], [1, 1, 1, 2]])
    for name, args in [("MaxLengthCriteria", (4,)), ("MaxLengthCriteria", (5,)), ("EosTokenCriteria", (7,)),
                       ("EosTokenCriteria", ([2, 9],)), ("EosTokenCriteria", (torch.tensor([2]),))]:
        assert torch.equal(getattr(ours, name)(*args)(ids, None), getattr(theirs, name)(*args)(ids, None)), name
    assert not ours.MaxTimeCriteria(10.0)(ids, None).any()
    assert ours.MaxTimeCriteria(0.5, initial_timestamp=time.time() - 1)(ids, None).all()
    criteria = ours.StoppingCriteriaList([ours.MaxTimeCriteria(10.0), ours.MaxLengthCriteria(6)])
    assert criteria.max_length == 6 and not criteria(ids, None).any()
    with pytest.warns(UserWarning, match="different"):
        ours.validate_stopping_criteria(criteria, 8)
    assert ours.validate_stopping_criteria(ours.StoppingCriteriaList(), 8).max_length == 8


def test_bad_stop_strings_raise(our_tokenizer):
    with pytest.raises(ConfigError, match="stop_strings"):
        ours.StopStringCriteria(our_tokenizer, [""])
