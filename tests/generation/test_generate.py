"""generate() on our GPT-2 and Llama against the reference's generate() on the same tiny checkpoints."""

from __future__ import annotations

import logging

import pytest
import torch

from .common import MASK, PROMPTS, outputs_equal

STRATEGIES = {
    "greedy": dict(),
    "sample": dict(do_sample=True),
    "sample-filters": dict(do_sample=True, top_k=10, top_p=0.9, temperature=0.7, repetition_penalty=1.3,
                           no_repeat_ngram_size=2),
    "sample-typical-minp": dict(do_sample=True, typical_p=0.8, min_p=0.05, top_k=0),
    "sample-epsilon-eta": dict(do_sample=True, epsilon_cutoff=0.01, eta_cutoff=0.02, temperature=1.5),
    "sample-several": dict(do_sample=True, num_return_sequences=3, top_k=20),
    "greedy-rules": dict(min_new_tokens=4, bad_words_ids=[[3], [4, 5]], sequence_bias={(9,): -5.0, (10, 11): 3.0},
                         suppress_tokens=[12], begin_suppress_tokens=[20], repetition_penalty=0.9),
    "greedy-forced": dict(exponential_decay_length_penalty=(2, 1.5), forced_eos_token_id=2, renormalize_logits=True),
    "beam": dict(num_beams=3),
    "beam-return-2": dict(num_beams=4, num_return_sequences=2, length_penalty=0.7),
    "beam-early": dict(num_beams=3, early_stopping=True, no_repeat_ngram_size=2),
    "beam-never": dict(num_beams=3, early_stopping="never", length_penalty=1.5),
    "beam-sample": dict(num_beams=3, do_sample=True, num_return_sequences=2, top_k=10),
}


def _both(pair, seed=0, **kwargs):
    reference, ours, _ = pair
    torch.manual_seed(seed)
    theirs = reference.generate(**kwargs)
    torch.manual_seed(seed)
    mine = ours.generate(**kwargs)
    return mine, theirs


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_matches_reference(pair, name):
    mine, theirs = _both(pair, input_ids=PROMPTS, attention_mask=MASK, max_new_tokens=10, pad_token_id=0,
                         return_dict_in_generate=True, output_scores=True, **STRATEGIES[name])
    outputs_equal(mine, theirs)
    assert mine.sequences.shape[1] > PROMPTS.shape[1]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_every_output_matches_reference(pair, strategy):
    mine, theirs = _both(pair, input_ids=PROMPTS[1:], attention_mask=MASK[1:], max_new_tokens=4,
                         return_dict_in_generate=True, output_scores=True, output_logits=True,
                         output_attentions=True, output_hidden_states=True, **STRATEGIES[strategy])
    outputs_equal(mine, theirs)
    assert mine.cache is not None and mine.cache.get_seq_length() == mine.sequences.shape[1] - 1
    assert mine.past_key_values is mine.cache
    plain, _ = _both(pair, input_ids=PROMPTS[1:], attention_mask=MASK[1:], max_new_tokens=4, **STRATEGIES[strategy])
    assert torch.equal(plain, mine.sequences)


def _eos_from_greedy(pair):
    """A token the greedy continuation of row 0 produces halfway, used as EOS so that rows finish early."""
    out = pair[1].generate(PROMPTS, attention_mask=MASK, max_new_tokens=10, pad_token_id=0)
    return int(out[0, PROMPTS.shape[1] + 3])


@pytest.mark.parametrize("strategy", ["greedy", "sample-several", "beam-return-2", "beam-early", "beam-sample"])
def test_eos_finishes_rows_like_reference(pair, strategy):
    eos = _eos_from_greedy(pair)
    mine, theirs = _both(pair, input_ids=PROMPTS, attention_mask=MASK, max_new_tokens=10, eos_token_id=[eos, 2],
                         pad_token_id=0, return_dict_in_generate=True, output_scores=True, **STRATEGIES[strategy])
    outputs_equal(mine, theirs)
    if strategy == "greedy":  # row 0 ends at the chosen EOS, then receives padding
        assert mine.sequences[0, PROMPTS.shape[1] + 3] == eos and (mine.sequences[0, -6:] == 0).all()


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_left_padded_rows_equal_solo_rows(pair, strategy):
    model = pair[1]
    batch = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=8, **STRATEGIES[strategy])
    for row in range(PROMPTS.shape[0]):
        solo = PROMPTS[row:row + 1, MASK[row].bool()]
        alone = model.generate(solo, max_new_tokens=8, **STRATEGIES[strategy])
        assert torch.equal(batch[row, -8:], alone[0, -8:]), row


def test_user_processors_and_criteria_are_honoured(pair):
    import transformers

    from leanformers.generation import (LogitsProcessor, LogitsProcessorList, StoppingCriteria,
                                        StoppingCriteriaList, TopKLogitsWarper)

    def lists(module_processor, module_criteria, topk):
        class Ban(module_processor):
            def __call__(self, input_ids, scores):
                return scores.index_fill(1, torch.tensor([int(t) for t in input_ids[:, -1].unique()]), -1e4)

        class LongEnough(module_criteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), input_ids.shape[1] >= 12, dtype=torch.bool)

        return dict(logits_processor=[Ban(), topk(top_k=3)], stopping_criteria=[LongEnough()])

    reference, ours, _ = pair
    kwargs = dict(input_ids=PROMPTS, attention_mask=MASK, max_new_tokens=10, do_sample=True, top_k=40)
    theirs_lists = lists(transformers.LogitsProcessor, transformers.StoppingCriteria, transformers.TopKLogitsWarper)
    our_lists = lists(LogitsProcessor, StoppingCriteria, TopKLogitsWarper)
    torch.manual_seed(3)
    theirs = reference.generate(**kwargs, logits_processor=transformers.LogitsProcessorList(
        theirs_lists["logits_processor"]), stopping_criteria=transformers.StoppingCriteriaList(
        theirs_lists["stopping_criteria"]))
    torch.manual_seed(3)
    mine = ours.generate(**kwargs, logits_processor=LogitsProcessorList(our_lists["logits_processor"]),
                         stopping_criteria=StoppingCriteriaList(our_lists["stopping_criteria"]))
    assert torch.equal(mine, theirs) and mine.shape[1] == 12


def test_stop_strings_match_reference(gpt2_pair, reference_tokenizer, our_tokenizer):
    reference, ours, _ = gpt2_pair
    prompt = torch.tensor([[40, 41, 42, 43]])
    text = our_tokenizer.decode(ours.generate(prompt, max_new_tokens=12)[0, 4:])
    stop = text[5:7]
    theirs = reference.generate(prompt, max_new_tokens=12, stop_strings=stop, tokenizer=reference_tokenizer)
    mine = ours.generate(prompt, max_new_tokens=12, stop_strings=[stop], tokenizer=our_tokenizer)
    assert torch.equal(mine, theirs) and our_tokenizer.decode(mine[0, 4:]).endswith(stop)


def test_inputs_embeds_match_reference(pair):
    reference, ours, _ = pair
    embeds = ours.get_input_embeddings()(PROMPTS[:1])
    mine, theirs = _both(pair, inputs_embeds=embeds, max_new_tokens=6)
    assert torch.equal(mine, theirs) and mine.shape == (1, 6)


def test_cache_continuation_and_static_cache(pair):
    model = pair[1]
    whole = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=10)
    first = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=4, return_dict_in_generate=True)
    mask = torch.cat([MASK, torch.ones(MASK.shape[0], 4, dtype=MASK.dtype)], dim=1)
    resumed = model.generate(first.sequences, attention_mask=mask, past_key_values=first.cache, max_new_tokens=6)
    assert torch.equal(resumed, whole)
    static = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=10, cache_implementation="static")
    assert torch.equal(static, whole)
    uncached = model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=10, use_cache=False)
    assert torch.equal(uncached, whole)


def test_defaults_and_no_warning_flood(pair, caplog):
    reference, ours, _ = pair
    caplog.set_level(logging.WARNING, logger="leanformers")
    for _ in range(3):
        mine = ours.generate(PROMPTS, attention_mask=MASK, max_new_tokens=3, eos_token_id=2)  # pad falls back to EOS
    assert [r for r in caplog.records if r.name == "leanformers"] == []
    with pytest.warns(UserWarning, match="max_length"):
        short = ours.generate(PROMPTS, attention_mask=MASK)
    assert torch.equal(short, reference.generate(PROMPTS, attention_mask=MASK))  # 20 new tokens by default
    assert torch.equal(mine, reference.generate(PROMPTS, attention_mask=MASK, max_new_tokens=3, eos_token_id=2))


def test_generation_config_saved_and_used(pair, tmp_path):
    from leanformers.generation import GenerationConfig

    _, ours, folder = pair
    ours.generation_config = GenerationConfig.from_pretrained(folder)
    ours.generation_config.max_new_tokens = 3
    ours.save_pretrained(tmp_path)
    reloaded = type(ours).from_pretrained(tmp_path)
    assert reloaded.generation_config.max_new_tokens == 3
    assert reloaded.generate(PROMPTS[:1]).shape == (1, PROMPTS.shape[1] + 3)
    custom = GenerationConfig(max_new_tokens=2, num_beams=2)
    assert reloaded.generate(PROMPTS[:1], generation_config=custom).shape == (1, PROMPTS.shape[1] + 2)


@pytest.mark.parametrize("strategy, normalize", [("sample-filters", True), ("beam-return-2", False)])
def test_transition_scores_match_reference(pair, strategy, normalize):
    reference, ours, _ = pair
    mine, theirs = _both(pair, input_ids=PROMPTS, attention_mask=MASK, max_new_tokens=6, return_dict_in_generate=True,
                         output_scores=True, **STRATEGIES[strategy])
    expected = reference.compute_transition_scores(theirs.sequences, theirs.scores, theirs.get("beam_indices"),
                                                   normalize_logits=normalize)
    got = ours.compute_transition_scores(mine.sequences, mine.scores, mine.get("beam_indices"),
                                         normalize_logits=normalize)
    torch.testing.assert_close(got, expected)


def test_max_time_stops_generation(pair):
    model = pair[1]
    assert model.generate(PROMPTS, attention_mask=MASK, max_new_tokens=10, max_time=0.0).shape[1] == 6
