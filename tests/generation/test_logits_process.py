"""Every logits processor against the reference one of the same name, on random scores and token histories."""

from __future__ import annotations

import pytest
import torch

from leanformers.errors import ConfigError
from leanformers.generation import logits_process as ours

VOCAB = 50
EOS = [3, 7]

CASES = [  # (class name, constructor kwargs)
    ("MinLengthLogitsProcessor", dict(min_length=12, eos_token_id=EOS)),
    ("MinLengthLogitsProcessor", dict(min_length=5, eos_token_id=3)),
    ("MinNewTokensLengthLogitsProcessor", dict(prompt_length_to_skip=4, min_new_tokens=6, eos_token_id=EOS)),
    ("MinNewTokensLengthLogitsProcessor", dict(prompt_length_to_skip=4, min_new_tokens=2, eos_token_id=EOS)),
    ("TemperatureLogitsWarper", dict(temperature=0.7)),
    ("RepetitionPenaltyLogitsProcessor", dict(penalty=1.3)),
    ("RepetitionPenaltyLogitsProcessor", dict(penalty=0.8, prompt_ignore_length=3)),
    ("RepetitionPenaltyLogitsProcessor", dict(penalty=1.5, prompt_ignore_length=torch.tensor([0, 2, 5, 1]))),
    ("EncoderRepetitionPenaltyLogitsProcessor", dict(penalty=1.4, encoder_input_ids=torch.tensor(
        [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]))),
    ("TopPLogitsWarper", dict(top_p=0.8)),
    ("TopPLogitsWarper", dict(top_p=0.3, min_tokens_to_keep=3)),
    ("TopKLogitsWarper", dict(top_k=5)),
    ("TopKLogitsWarper", dict(top_k=2, min_tokens_to_keep=4, filter_value=-1e4)),
    ("MinPLogitsWarper", dict(min_p=0.1)),
    ("MinPLogitsWarper", dict(min_p=0.9, min_tokens_to_keep=2)),
    ("TypicalLogitsWarper", dict(mass=0.7)),
    ("TypicalLogitsWarper", dict(mass=0.2, min_tokens_to_keep=3)),
    ("EpsilonLogitsWarper", dict(epsilon=0.02)),
    ("EpsilonLogitsWarper", dict(epsilon=0.3, min_tokens_to_keep=2)),
    ("EtaLogitsWarper", dict(epsilon=0.02)),
    ("EtaLogitsWarper", dict(epsilon=0.5, min_tokens_to_keep=3)),
    ("NoRepeatNGramLogitsProcessor", dict(ngram_size=1)),
    ("NoRepeatNGramLogitsProcessor", dict(ngram_size=2)),
    ("NoRepeatNGramLogitsProcessor", dict(ngram_size=3)),
    ("EncoderNoRepeatNGramLogitsProcessor", dict(encoder_ngram_size=2, encoder_input_ids=torch.tensor(
        [[1, 2, 1, 3], [2, 2, 4, 2]]))),
    ("SequenceBiasLogitsProcessor", dict(sequence_bias={(4,): 2.5, (1, 2): -3.0, (2, 1, 5): 4.0})),
    ("SequenceBiasLogitsProcessor", dict(sequence_bias=[[[6], 1.5], [[1, 9], -2.0]])),
    ("NoBadWordsLogitsProcessor", dict(bad_words_ids=[[5], [1, 2], [3]], eos_token_id=3)),
    ("PrefixConstrainedLogitsProcessor", dict(prefix_allowed_tokens_fn=lambda b, ids: [b, int(ids[-1]) % VOCAB],
                                              num_beams=2)),
    ("ForcedBOSTokenLogitsProcessor", dict(bos_token_id=4)),
    ("ForcedEOSTokenLogitsProcessor", dict(max_length=9, eos_token_id=EOS)),
    ("ForcedEOSTokenLogitsProcessor", dict(max_length=20, eos_token_id=3)),
    ("InfNanRemoveLogitsProcessor", {}),
    ("ExponentialDecayLengthPenalty", dict(exponential_decay_length_penalty=(2, 1.7), eos_token_id=EOS,
                                           input_ids_seq_length=3)),
    ("LogitNormalization", {}),
    ("SuppressTokensAtBeginLogitsProcessor", dict(begin_suppress_tokens=[1, 4], begin_index=8)),
    ("SuppressTokensLogitsProcessor", dict(suppress_tokens=[0, 9, 49])),
]


def _inputs(seed, length=8, rows=4):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 10, (rows, length), generator=g)  # a small alphabet so n-grams repeat
    scores = torch.randn(rows, VOCAB, generator=g) * 3
    scores[0, 3] = float("inf")
    scores[1, 5] = float("-inf")
    scores[2, 8] = float("nan")
    return input_ids, scores


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_processor_matches_reference(name, kwargs):
    import transformers.generation.logits_process as theirs

    for seed in range(3):
        input_ids, scores = _inputs(seed)
        if name != "InfNanRemoveLogitsProcessor":
            scores = torch.nan_to_num(scores, nan=0.0, posinf=9.0, neginf=-9.0)
        before = scores.clone()
        expected = getattr(theirs, name)(**kwargs)(input_ids, scores.clone())
        got = getattr(ours, name)(**kwargs)(input_ids, scores)
        torch.testing.assert_close(got, expected, equal_nan=True)
        torch.testing.assert_close(scores, before, equal_nan=True)  # never modified in place


def test_processor_list_passes_extra_arguments():
    calls = []

    class Needy(ours.LogitsProcessor):
        def __call__(self, input_ids, scores, beam_group_idx):
            calls.append(beam_group_idx)
            return scores + beam_group_idx

    chain = ours.LogitsProcessorList([ours.TemperatureLogitsWarper(2.0), Needy()])
    out = chain(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 4), beam_group_idx=3)
    assert calls == [3] and torch.equal(out, torch.full((1, 4), 3.5))
    with pytest.raises(ConfigError, match="beam_group_idx"):
        chain(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 4))


def test_hamming_diversity_penalises_earlier_groups():
    processor = ours.HammingDiversityLogitsProcessor(diversity_penalty=0.5, num_beams=4, num_beam_groups=2)
    scores = torch.zeros(2, 6)  # the 2 beams of group 1, for one prompt
    current = torch.tensor([3, 3, 0, 0])  # group 0 chose token 3 twice
    out = processor(None, scores, current_tokens=current, beam_group_idx=1)
    assert out[:, 3].tolist() == [-1.0, -1.0] and out.sum().item() == -2.0
    assert torch.equal(processor(None, scores, current_tokens=current, beam_group_idx=0), scores)


@pytest.mark.parametrize("make", [
    lambda: ours.TemperatureLogitsWarper(0.0),
    lambda: ours.TopKLogitsWarper(0),
    lambda: ours.TopPLogitsWarper(1.5),
    lambda: ours.TypicalLogitsWarper(1.0),
    lambda: ours.RepetitionPenaltyLogitsProcessor(0.0),
    lambda: ours.NoRepeatNGramLogitsProcessor(0),
    lambda: ours.NoBadWordsLogitsProcessor([]),
    lambda: ours.SequenceBiasLogitsProcessor({(1,): 1}),
    lambda: ours.HammingDiversityLogitsProcessor(0.5, num_beams=4, num_beam_groups=1),
])
def test_bad_processor_arguments_raise(make):
    with pytest.raises(ConfigError):
        make()
