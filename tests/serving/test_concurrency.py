"""Continuous batching over HTTP: 16 greedy requests of different lengths joining at different times each get
exactly the tokens they get alone (from the server and from generate()); cancelled streams free their slots; a full
queue answers 429; bad input and slow clients get their error while the server keeps serving; SIGTERM stops it."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import httpx2 as httpx
import openai
import pytest
import torch

import leanformers

from .conftest import TINY_LLAMA

MAX_BATCH, MAX_LEN = 4, 128
LENGTHS = [3, 17, 5, 40, 9, 2, 28, 11, 7, 33, 4, 21, 14, 6, 25, 1]
NEW = [12, 5, 19, 8, 15, 4, 11, 18, 7, 13, 5, 16, 9, 6, 14, 8]


@pytest.fixture(scope="module")
def server(start_server, tiny_llama_dir):
    return start_server(tiny_llama_dir, "--max-batch", MAX_BATCH, "--max-queue", 32, "--max-model-len", MAX_LEN,
                        "--batch-invariant")


@pytest.fixture(scope="module")
def prompts():
    generator = torch.Generator().manual_seed(3)
    return [torch.randint(3, 49152, (n,), generator=generator).tolist() for n in LENGTHS]


def _complete(url, ids, max_tokens, delay=0.0, stream=False):
    time.sleep(delay)
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
    if not stream:
        answer = client.completions.create(model=None, prompt=ids, max_tokens=max_tokens, temperature=0, logprobs=0)
        choice = answer.choices[0]
        return answer.id, choice.logprobs.tokens, choice.text, choice.finish_reason
    chunks = list(client.completions.create(model=None, prompt=ids, max_tokens=max_tokens, temperature=0,
                                            stream=True))
    return chunks[0].id, None, "".join(c.choices[0].text for c in chunks if c.choices), chunks[-1].choices[
        0].finish_reason


def test_sixteen_joining_requests_equal_alone(server, prompts, tiny_llama_dir):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = leanformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    alone = [_complete(server.url, ids, n) for ids, n in zip(prompts, NEW)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(_complete, server.url, ids, n, 0.04 * i, i % 2 == 1)
                   for i, (ids, n) in enumerate(zip(prompts, NEW))]
        together = [f.result(timeout=180) for f in futures]
    assert len({t[0] for t in together}) == 16  # nothing lost, nothing duplicated
    for i, (ids, n) in enumerate(zip(prompts, NEW)):
        expected = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                                  batch_invariant=True)[0, len(ids):].tolist()
        expected = expected[:expected.index(2) + 1] if 2 in expected else expected
        assert alone[i][1] == [tokenizer.decode([t]) for t in expected], i
        assert together[i][2] == alone[i][2] == tokenizer.decode(expected, skip_special_tokens=True), i
        assert together[i][3] == alone[i][3], i
    health = httpx.get(server.url + "/health").json()
    per_token = 2 * TINY_LLAMA["num_hidden_layers"] * TINY_LLAMA["num_key_value_heads"] * 64 * 4
    assert health["kv_cache_bytes"] == MAX_BATCH * MAX_LEN * per_token  # the memory bound, allocated once
    assert health["running"] == 0 and health["waiting"] == 0


def _wait_idle(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = httpx.get(url + "/health").json()
        if health["running"] == 0 and health["waiting"] == 0:
            return health
        time.sleep(0.1)
    pytest.fail(f"the server did not free its slots: {health}")


def test_cancelled_streams_free_their_slots(server, prompts):
    body = {"prompt": prompts[0], "max_tokens": MAX_LEN - len(prompts[0]), "temperature": 0, "stream": True}
    with httpx.Client(timeout=60) as client:
        for _ in range(MAX_BATCH + 2):  # more than there are slots: each must be given back
            with client.stream("POST", server.url + "/v1/completions", json=body) as response:
                lines = response.iter_lines()
                got = [next(lines) for _ in range(4)]
                assert any(line.startswith("data: {") for line in got)
    _wait_idle(server.url)
    assert _complete(server.url, prompts[1], 3)[3] in ("stop", "length")


def test_full_queue_answers_429_and_loses_nothing(start_server, tiny_llama_dir, prompts):
    small = start_server(tiny_llama_dir, "--max-batch", 1, "--max-queue", 1, "--max-model-len", MAX_LEN)
    body = {"prompt": prompts[3], "max_tokens": 30, "temperature": 0}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(httpx.post, small.url + "/v1/completions", json=body, timeout=120) for _ in range(6)]
        responses = [f.result(timeout=180) for f in futures]
    codes = sorted(r.status_code for r in responses)
    assert 429 in codes and 200 in codes and set(codes) == {200, 429}, codes
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["type"] == "rate_limit_error"
    texts = {r.json()["choices"][0]["text"] for r in responses if r.status_code == 200}
    assert len(texts) == 1  # every accepted request got the same full answer


def test_bad_input_gets_its_error_and_the_server_keeps_serving(server, prompts):
    url = server.url + "/v1/chat/completions"
    user = [{"role": "user", "content": "hi"}]
    cases = [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not valid UTF-8"), (b"[1, 2]", "JSON object"),
             (json.dumps({"messages": user, "stream": "yes"}).encode(), "'stream'"),
             (json.dumps({"messages": user, "stop": [1, 2]}).encode(), "'stop'"),
             (json.dumps({"messages": user, "max_tokens": True}).encode(), "'max_tokens'"),
             (json.dumps({"messages": [{"role": "user"}]}).encode(), "content")]
    bad_ids = httpx.post(server.url + "/v1/completions", json={"prompt": [5, 10 ** 9]}, timeout=30)
    assert bad_ids.status_code == 400 and "vocabulary" in bad_ids.json()["error"]["message"]
    for raw, words in cases:
        response = httpx.post(url, content=raw, headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, raw
        assert words in response.json()["error"]["message"], (raw, response.json())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:  # a client that stalls
        slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 500\r\n\r\n{\"prompt\": ")
        assert _complete(server.url, prompts[2], 4)[3] in ("stop", "length")
    assert httpx.get(server.url + "/metrics").text.count("leanformers_requests_total") >= 2


def test_sigterm_finishes_in_flight_streams_and_exits(server, prompts):
    doomed = server  # the last test of the module: the module's server is stopped here
    body = {"prompt": prompts[0], "max_tokens": 40, "temperature": 0, "stream": True}
    with httpx.Client(timeout=60) as client:
        with client.stream("POST", doomed.url + "/v1/completions", json=body) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            doomed.process.send_signal(15)
            rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert doomed.stop() == 0
