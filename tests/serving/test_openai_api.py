"""The official `openai` client against `leanformers serve` (default kernels) on a tiny random Llama (with the
SmolLM2 tokenizer and chat template): models, chat, streamed chat, completions, sampling options, logprobs, errors."""

from __future__ import annotations

import openai
import pytest
import torch

import leanformers

from .conftest import API_KEY

MAX_TOKENS = 12
CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour. Café 北京 😀"}]


@pytest.fixture(scope="module")
def server(start_server, tiny_llama_dir):
    return start_server(tiny_llama_dir, "--api-key", API_KEY, "--max-batch", 4, "--max-model-len", 128)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def local(tiny_llama_dir):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = leanformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return tokenizer, model


def _greedy(local, ids, max_tokens=MAX_TOKENS):
    """generate() alone: the tokens, cut after the first end-of-sequence token. A request that runs alone on the
    server (default kernels) gets exactly these."""
    tokenizer, model = local
    out = model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False)[0, len(ids):].tolist()
    return out[:out.index(2) + 1] if 2 in out else out


def _chat_ids(local, messages):
    return local[0].apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)


def test_models(client, tiny_llama_dir):
    models = client.models.list().data
    assert [m.id for m in models] == [tiny_llama_dir.name] and models[0].owned_by == "leanformers"


def test_chat_equals_generate_and_stream_concatenates_to_it(client, local, tiny_llama_dir):
    expected = _greedy(local, _chat_ids(local, CHAT))
    answer = client.chat.completions.create(model=tiny_llama_dir.name, messages=CHAT, max_tokens=MAX_TOKENS,
                                            temperature=0)
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == local[0].decode(expected, skip_special_tokens=True)
    assert choice.finish_reason == ("stop" if expected[-1] == 2 else "length")
    assert answer.usage.prompt_tokens == len(_chat_ids(local, CHAT))
    assert answer.usage.completion_tokens == len(expected)
    stream = client.chat.completions.create(model=tiny_llama_dir.name, messages=CHAT, max_tokens=MAX_TOKENS,
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(expected)


def test_completions_echo_logprobs_stop_and_n(client, local, tiny_llama_dir):
    prompt = "Once upon a time"
    ids = local[0](prompt)["input_ids"]
    expected = _greedy(local, ids)
    text = local[0].decode(expected, skip_special_tokens=True)
    answer = client.completions.create(model=tiny_llama_dir.name, prompt=prompt, max_tokens=MAX_TOKENS,
                                       temperature=0, echo=True, logprobs=2)
    choice = answer.choices[0]
    assert choice.text == prompt + text
    assert len(choice.logprobs.tokens) == len(expected) and all(len(t) == 2 for t in choice.logprobs.top_logprobs)
    with torch.no_grad():
        logits = local[1](torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    assert choice.logprobs.token_logprobs[0] == pytest.approx(float(logits[expected[0]]), abs=1e-4)
    stop = text[3:6]
    stopped = client.completions.create(model=tiny_llama_dir.name, prompt=prompt, max_tokens=MAX_TOKENS,
                                        temperature=0, stop=[stop])
    assert stopped.choices[0].text == text[:text.index(stop)] and stopped.choices[0].finish_reason == "stop"
    sample = dict(model=tiny_llama_dir.name, max_tokens=5, n=2, temperature=1.0, top_p=0.9, seed=7)
    sampled = client.completions.create(prompt=[prompt, prompt], **sample)
    again = client.completions.create(prompt=[ids], **sample)
    assert [c.index for c in sampled.choices] == [0, 1, 2, 3]
    assert [c.text for c in sampled.choices][:2] == [c.text for c in again.choices]  # a seed repeats; ids = text
    assert sampled.choices[0].text == sampled.choices[2].text


def test_chat_logprobs(client, local, tiny_llama_dir):
    answer = client.chat.completions.create(model=tiny_llama_dir.name, messages=CHAT, max_tokens=3, temperature=0,
                                            logprobs=True, top_logprobs=3)
    content = answer.choices[0].logprobs.content
    assert len(content) == 3 and all(len(e.top_logprobs) == 3 for e in content)
    assert all(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob for e in content)
    assert content[0].logprob == content[0].top_logprobs[0].logprob  # greedy takes the likeliest token


def test_errors(client, server, tiny_llama_dir):
    name = tiny_llama_dir.name
    user = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="no-such-model", messages=user)
    cases = [dict(messages=[]), dict(messages=user, max_tokens="many"), dict(messages=user, max_tokens=10 ** 6),
             dict(messages=user, n=1000), dict(messages=user, temperature=5), dict(messages="hi"),
             dict(messages=[{"role": "wizard", "content": "hi"}]), dict(messages=user, top_logprobs=3),
             dict(messages=[{"role": "user", "content": "word " * 200}])]
    for case in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=name, **case)
        assert caught.value.body["type"] == "invalid_request_error", case
    with pytest.raises(openai.BadRequestError, match="maximum context length is 128 tokens"):
        client.completions.create(model=name, prompt="word " * 200)
    answer = client.chat.completions.create(model=name, messages=user, max_tokens=2, temperature=0,
                                            extra_body={"unknown_field": {"ignored": True}})
    assert answer.choices[0].finish_reason in ("stop", "length")  # unknown fields are ignored; still serving
