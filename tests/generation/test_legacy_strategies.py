"""Diverse beam search, contrastive search and constrained beam search against Transformers 4.55.4 (the last
release with them in its core), run once in a subprocess for all cases."""

from __future__ import annotations

import pytest
import torch

from leanformers.generation import DisjunctiveConstraint, PhrasalConstraint

from .common import MASK, PROMPTS
from .legacy_ref import legacy_generate

CASES = {
    "group-2x2": dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0, num_return_sequences=2),
    "group-3x2": dict(num_beams=6, num_beam_groups=3, diversity_penalty=0.5, early_stopping=True,
                      length_penalty=0.8),
    "contrastive": dict(penalty_alpha=0.6, top_k=4),
    "contrastive-rules": dict(penalty_alpha=0.3, top_k=3, no_repeat_ngram_size=2, min_new_tokens=3),
    "phrase": dict(num_beams=3, force_words_ids=[[30, 31]], num_return_sequences=2),
    "disjunctive": dict(num_beams=4, force_words_ids=[[[40, 41], [42]], [50]]),
    "constraint-objects": dict(num_beams=3, phrases=[[33, 34], [[44], [45, 46]]], length_penalty=0.5),
}
CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}


def _jobs(gpt2_pair, llama_pair):
    jobs = []
    for kind, (_, _, folder) in (("gpt2", gpt2_pair), ("llama", llama_pair)):
        for name, settings in CASES.items():
            jobs.append(dict(class_name=CLASSES[kind], folder=folder, seed=0, kwargs={
                **settings, "max_new_tokens": 10, "pad_token_id": 0, "eos_token_id": [2, 57]},
                inputs={"input_ids": PROMPTS.tolist(), "attention_mask": MASK.tolist()}))
    return jobs


@pytest.fixture(scope="module")
def legacy_results(gpt2_pair, llama_pair):
    jobs = _jobs(gpt2_pair, llama_pair)
    return {(job["class_name"], name): result for job, name, result in
            zip(jobs, [n for _ in CLASSES for n in CASES], legacy_generate(jobs))}


def _our_settings(settings):
    settings = dict(settings)
    if "phrases" in settings:
        settings["constraints"] = [DisjunctiveConstraint(p) if isinstance(p[0], list) else PhrasalConstraint(p)
                                   for p in settings.pop("phrases")]
    return settings


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_matches_transformers_4(kind, name, legacy_results, request):
    model = request.getfixturevalue(f"{kind}_pair")[1]
    expected = legacy_results[(CLASSES[kind], name)]
    torch.manual_seed(0)
    out = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=10, pad_token_id=0, eos_token_id=[2, 57],
                         return_dict_in_generate=True, output_scores=True, **_our_settings(CASES[name]))
    assert out.sequences.tolist() == expected["sequences"]
    if "sequences_scores" in expected:
        torch.testing.assert_close(out.sequences_scores, torch.tensor(expected["sequences_scores"]),
                                   atol=1e-4, rtol=1e-4)
    assert len(out.scores) == len(expected["scores"])
    for mine, theirs in zip(out.scores, expected["scores"]):
        torch.testing.assert_close(mine, torch.tensor(theirs), atol=1e-4, rtol=1e-4)


def test_constraints_are_satisfied(llama_pair):
    model = llama_pair[1]
    out = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=8, num_beams=4,
                         force_words_ids=[[70, 71], [[80], [81, 82]]])
    for row in out[:, PROMPTS.shape[1]:].tolist():
        assert any(row[i:i + 2] == [70, 71] for i in range(len(row) - 1))
        assert 80 in row or any(row[i:i + 2] == [81, 82] for i in range(len(row) - 1))
