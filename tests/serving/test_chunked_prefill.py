"""Chunked prefill: a long prompt joining running streams is prefilled a chunk per decoding step, so the running
streams keep receiving tokens meanwhile, and every request still gets generate()'s greedy tokens (bitwise, with
its logprobs, in batch-invariant mode). A request cancelled beside others frees its slot and the others go on."""

from __future__ import annotations

import threading
import time

import pytest
import torch

import leanformers
from leanformers.serving.engine import Engine, GenerationRequest

CHUNK = 64
LONG = 3 * CHUNK + 1        # three chunks: 64, then 64 + 65 (a last chunk is never a single token)
SHORT = [(9, 30), (14, 30)]  # (prompt tokens, new tokens) of the running streams
LONG_NEW = 8


@pytest.fixture(scope="module")
def models(tiny_llama_dir, tiny_gpt2_dir):
    return {name: leanformers.AutoModelForCausalLM.from_pretrained(folder).eval()
            for name, folder in (("llama", tiny_llama_dir), ("gpt2", tiny_gpt2_dir))}


def _wait(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert condition(), "the engine did not get there in time"


def _serve(model, prompts, invariant):
    """The short prompts start first; the long one (last) joins once each has two tokens.
    -> (event log of (request index, token, logprob), its length when the long prompt came, finish reasons)"""
    engine = Engine(model, max_batch=4, max_queue=8, max_len=256, invariant=invariant, prefill_chunk=CHUNK)
    log, reasons, done = [], {}, threading.Event()

    def emitter(i):
        def emit(kind, payload):
            if kind == "token":
                log.append((i, payload[0], payload[1][0]))
            else:
                reasons[i] = payload
                done.set() if len(reasons) == len(prompts) else None
        return emit

    def submit(i, new):
        engine.submit([GenerationRequest(prompt_ids=prompts[i].tolist(), max_tokens=new, emit=emitter(i),
                                         temperature=0.0, top_logprobs=0)])

    try:
        for i, (_, new) in enumerate(SHORT):
            submit(i, new)
        _wait(lambda: all(sum(1 for e in log if e[0] == i) >= 2 for i in range(len(SHORT))))
        joined = len(log)
        submit(len(SHORT), LONG_NEW)
        assert done.wait(120), f"only {len(reasons)} of {len(prompts)} requests finished"
    finally:
        engine.shutdown()
    return log, joined, reasons


@pytest.mark.parametrize("name, invariant", [("llama", False), ("llama", True), ("gpt2", True)],
                         ids=["llama-default", "llama-batch-invariant", "gpt2-batch-invariant"])
def test_long_prompt_is_prefilled_while_running_streams_decode(models, name, invariant):
    model = models[name]
    generator = torch.Generator().manual_seed(5)
    prompts = [torch.randint(3, 49152, (n,), generator=generator) for n, _ in SHORT]
    prompts.append(torch.randint(3, 49152, (LONG,), generator=generator))
    log, joined, reasons = _serve(model, prompts, invariant)
    first_long = next(n for n, event in enumerate(log) if event[0] == len(SHORT))
    for i in range(len(SHORT)):  # a decoding step after each chunk of the long prompt but its last
        assert sum(1 for e in log[joined:first_long] if e[0] == i) >= LONG // CHUNK - 1, (i, log)
    for i, prompt in enumerate(prompts):
        new = SHORT[i][1] if i < len(SHORT) else LONG_NEW
        expected = model.generate(prompt[None], max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                  return_dict_in_generate=True, output_logits=True, batch_invariant=invariant)
        tokens = expected.sequences[0, len(prompt):].tolist()
        assert [e[1] for e in log if e[0] == i] == tokens, i
        assert reasons[i] == "length"
        if invariant:  # bitwise: the chosen tokens' logprobs are those of generate() alone
            logprobs = [float(step[0].float().log_softmax(-1)[t]) for step, t in zip(expected.logits, tokens)]
            assert [e[2] for e in log if e[0] == i] == logprobs, i


def test_a_chunk_that_is_not_a_multiple_of_the_query_block_is_refused(models):
    with pytest.raises(ValueError, match="multiple of 64"):
        Engine(models["llama"], prefill_chunk=100)


def test_a_request_cancelled_beside_others_frees_its_slot_and_the_others_go_on(models):
    model, generator = models["llama"], torch.Generator().manual_seed(6)
    prompts = [torch.randint(3, 49152, (n,), generator=generator).tolist() for n in (5, 11, 7)]
    engine = Engine(model, max_batch=3, max_queue=8, max_len=128)
    tokens, reasons, requests = {0: [], 1: [], 2: []}, {}, []
    for i, prompt in enumerate(prompts):
        def emit(kind, payload, i=i):
            tokens[i].append(payload[0]) if kind == "token" else reasons.setdefault(i, payload)
        requests.append(GenerationRequest(prompt_ids=prompt, max_tokens=20, emit=emit, temperature=0.0))
    try:
        engine.submit(requests)
        _wait(lambda: all(len(t) >= 2 for t in tokens.values()))
        requests[0].cancel()  # the last running request moves into its slot
        _wait(lambda: len(reasons) == 3)
        assert len(engine.running) == len(engine.prefilling) == 0
    finally:
        engine.shutdown()
    assert reasons == {0: "cancelled", 1: "length", 2: "length"}
    for i in (1, 2):
        expected = model.generate(torch.tensor([prompts[i]]), max_new_tokens=20, min_new_tokens=20, do_sample=False)
        assert tokens[i] == expected[0, len(prompts[i]):].tolist(), i


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_prompts_arriving_together_are_prefilled_in_one_pass(models, name, monkeypatch):
    model, generator = models[name], torch.Generator().manual_seed(7)
    lengths = (5, 23, 12, 40)  # left-padded to 40 in one forward pass
    prompts = [torch.randint(3, 1000, (n,), generator=generator).tolist() for n in lengths]
    passes = []
    together = Engine._prefill_together
    monkeypatch.setattr(Engine, "_prefill_together", lambda self, requests: (
        passes.append(len(requests)), together(self, requests)))
    engine = Engine(model, max_batch=4, max_queue=8, max_len=128)
    log, reasons = {i: [] for i in range(len(prompts))}, {}
    requests = [GenerationRequest(prompt_ids=prompt, max_tokens=6, temperature=0.0, top_logprobs=0,
                                  emit=lambda kind, payload, i=i: log[i].append(payload) if kind == "token"
                                  else reasons.setdefault(i, payload)) for i, prompt in enumerate(prompts)]
    try:
        engine.submit(requests)
        _wait(lambda: len(reasons) == len(prompts))
    finally:
        engine.shutdown()
    assert passes == [len(prompts)]
    for i, prompt in enumerate(prompts):
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=6, min_new_tokens=6, do_sample=False,
                                  return_dict_in_generate=True, output_logits=True)
        tokens = expected.sequences[0, len(prompt):].tolist()
        assert [token for token, _ in log[i]] == tokens and reasons[i] == "length", i
        first = float(expected.logits[0][0].float().log_softmax(-1)[tokens[0]])  # products of other row counts:
        assert log[i][0][1][0] == pytest.approx(first, abs=1e-4), i  # float32 rounding, 1e-5 seen on Intel


def test_prompts_arriving_while_nothing_decodes_are_prefilled_past_one_chunk(models, monkeypatch):
    """No stream waits while nothing decodes: a burst of short prompts longer than a chunk in all goes in one padded
    pass, and a long prompt alone in one pass (generate()'s own prefill, so its own tokens)."""
    model, generator = models["llama"], torch.Generator().manual_seed(11)
    passes, chunks = [], []
    together, chunk = Engine._prefill_together, Engine._prefill_chunk
    monkeypatch.setattr(Engine, "_prefill_together", lambda self, requests: (
        passes.append(len(requests)), together(self, requests)))
    monkeypatch.setattr(Engine, "_prefill_chunk", lambda self, request, take: (
        chunks.append(take), chunk(self, request, take)))
    engine = Engine(model, max_batch=4, max_queue=8, max_len=256, prefill_chunk=CHUNK)
    burst = [torch.randint(3, 1000, (n,), generator=generator).tolist() for n in (40, 50, 30, 60)]
    long = torch.randint(3, 1000, (LONG,), generator=generator).tolist()
    tokens = {}

    def run(prompts):
        reasons = {}
        requests = [GenerationRequest(prompt_ids=prompt, max_tokens=4, temperature=0.0, emit=lambda kind, payload,
                                      i=i: tokens.setdefault(i, []).append(payload[0]) if kind == "token"
                                      else reasons.setdefault(i, payload)) for i, prompt in enumerate(prompts)]
        engine.submit(requests)
        _wait(lambda: len(reasons) == len(prompts))
    try:
        run(burst)
        assert passes == [len(burst)] and chunks == []
        tokens.clear()
        run([long])
        assert chunks == [LONG]
    finally:
        engine.shutdown()
    expected = model.generate(torch.tensor([long]), max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert tokens[0] == expected[0, LONG:].tolist()
