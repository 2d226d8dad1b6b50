"""Bad generate() calls fail early with a ConfigError (a ValueError, as in the reference) that names the fix."""

from __future__ import annotations

import pytest
import torch

from leanformers.errors import ConfigError
from leanformers.generation import TextStreamer

from .common import MASK, PROMPTS


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_new_tokens=-1), "max_new_tokens must be greater than 0"),
    (dict(num_beams=3, num_beam_groups=2, diversity_penalty=1.0), "divisible by num_beam_groups"),
    (dict(num_beams=4, num_beam_groups=2), "diversity_penalty"),
    (dict(do_sample=True, top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(do_sample=True, top_p=1.2), r"top_p must be in \(0, 1\]"),
    (dict(max_new_tokens=3, temprature=0.5), r"model_kwargs.*not used by the model.*\['temprature'\]"),
    (dict(max_length=4), "Input length of input_ids is 5, but max_length is set to 4"),
    (dict(max_new_tokens=70), "encodes at most 64"),
    (dict(max_new_tokens=3, stop_strings="end"), "pass generate\\(..., tokenizer=tokenizer\\)"),
    (dict(max_new_tokens=3, penalty_alpha=0.5, top_k=3, use_cache=False), "requires use_cache=True"),
    (dict(max_new_tokens=3, custom_generate="someone/repo"), "never runs code from the hub"),
    (dict(max_new_tokens=3, num_return_sequences=2), "needs do_sample=True"),
    (dict(max_new_tokens=3, num_beams=2, num_return_sequences=3), "smaller or equal to num_beams"),
    (dict(max_new_tokens=3, do_sample=True, temperature=0.0), "temperature"),
])
def test_bad_generate_arguments(gpt2_pair, kwargs, message):
    model = gpt2_pair[1]
    with pytest.raises(ConfigError, match=message):
        model.generate(PROMPTS, attention_mask=MASK, **kwargs)


def test_prompt_longer_than_position_table(gpt2_pair):
    model = gpt2_pair[1]
    with pytest.raises(ConfigError, match="truncate the prompt"):
        model.generate(torch.ones(1, 65, dtype=torch.long), max_new_tokens=1)


def test_streamer_needs_single_sequence_strategies(gpt2_pair, our_tokenizer):
    model = gpt2_pair[1]
    with pytest.raises(ConfigError, match="num_beams=1"):
        model.generate(PROMPTS[:1], max_new_tokens=3, num_beams=2, streamer=TextStreamer(our_tokenizer))


def test_prompt_given_twice(gpt2_pair):
    model = gpt2_pair[1]
    with pytest.raises(ConfigError, match="not both"):
        model.generate(PROMPTS, input_ids=PROMPTS, max_new_tokens=2)
