"""`Engine(compile=True)` (`leanformers serve --compile`): one compiled decoding step, of dynamic batch size and key
length, gives each request generate()'s greedy tokens, alone (beside its dummy row) or in a batch that shrinks as
requests finish; where it cannot apply it is refused at start."""

from __future__ import annotations

import copy
import threading

import pytest
import torch

import leanformers
from leanformers import products
from leanformers.generation.compiled import CompileConfig, inductor_settings
from leanformers.serving import build_state, compiled_step, load
from leanformers.serving.engine import Engine, GenerationRequest


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return leanformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()


def _run(engine, requests):
    """Submit `requests` at once -> {index: [(token, logprob), ...]} once every one is done."""
    log, done, finished = {i: [] for i in range(len(requests))}, threading.Event(), []
    for i, request in enumerate(requests):
        def emit(kind, payload, i=i):
            if kind == "token":
                log[i].append((payload[0], payload[1][0]))
            else:
                finished.append(payload)
                done.set() if len(finished) == len(requests) else None
        request.emit = emit
    engine.submit(requests)
    assert done.wait(600), "the engine did not finish in time"
    assert finished == ["length"] * len(requests)
    return log


def _greedy_requests(shapes, seed):
    """Random prompts of the given (prompt tokens, new tokens) shapes, and a greedy request for each."""
    generator = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(3, 1000, (n,), generator=generator).tolist() for n, _ in shapes]
    return prompts, [GenerationRequest(prompt_ids=p, max_tokens=new, emit=None, temperature=0.0, top_logprobs=0)
                     for p, (_, new) in zip(prompts, shapes)]


def test_one_compiled_graph_decodes_every_batch_like_generate(llama):
    shapes = [(7, 5), (5, 6), (23, 9), (12, 3), (40, 12)]  # (prompt tokens, new tokens): first alone, then 4 at once
    prompts, requests = _greedy_requests(shapes, seed=3)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    engine = Engine(llama, max_batch=4, max_queue=8, max_len=128, compile=True)
    try:
        log = {**_run(engine, requests[:1]), **{i + 1: got for i, got in _run(engine, requests[1:]).items()}}
    finally:
        engine.shutdown()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 1  # batch sizes 1-4, every length
    for i, (prompt, (_, new)) in enumerate(zip(prompts, shapes)):
        expected = llama.generate(torch.tensor([prompt]), max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                  return_dict_in_generate=True, output_logits=True)
        tokens = expected.sequences[0, len(prompt):].tolist()
        assert [token for token, _ in log[i]] == tokens, i
        last = float(expected.logits[-1][0].log_softmax(-1)[tokens[-1]])  # a compiled step's logprob
        assert log[i][-1][1] == pytest.approx(last, abs=1e-4), i


@pytest.mark.parametrize("intel", [True, False])
def test_the_step_compiles_with_the_kernels_measured_for_the_processor(monkeypatch, intel):
    """On Intel, a step of symbolic size takes oneDNN's or MKL's packed kernels (no GEMM template); elsewhere, and
    generate()'s fixed-size steps, the template. The test above decodes through whichever this processor takes."""
    monkeypatch.setattr(products, "INTEL", intel)
    settings = inductor_settings(CompileConfig(dynamic=True), torch.device("cpu"))
    assert settings["freezing"] and settings["max_autotune"] is not intel
    assert inductor_settings(CompileConfig(), torch.device("cpu"))["max_autotune"]


def test_compiling_is_refused_where_it_cannot_apply(llama):
    with pytest.raises(ValueError, match="batch invariance"):
        Engine(llama, compile=True, invariant=True)
    unsupported = copy.copy(llama)  # a model whose forward was not written for a compiled step
    unsupported.__class__ = type("Unsupported", (type(llama),), {"_supports_compiled_decoding": False})
    with pytest.raises(ValueError, match="no compiled decoding step"):
        Engine(unsupported, compile=True)


def test_a_compiling_server_compiles_before_it_takes_requests(tiny_llama_dir):
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    state = build_state(load(str(tiny_llama_dir)), max_batch=2, max_len=64, compile=True)
    try:
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs + 1
        assert state.engine.metrics is state.metrics and state.metrics.completion_tokens == 0  # warm-up not counted
    finally:
        state.engine.shutdown()


def test_fixed_shape_steps_decode_every_batch_like_generate(llama, monkeypatch):
    """The CUDA form of the step (one graph per batch size padded to a power of two, keys over the slots' whole
    length, every size compiled at the first step), run on this processor without the CUDA graphs."""
    monkeypatch.setattr(compiled_step, "fixed_shapes", lambda device: True)
    shapes = [(9, 4), (6, 7), (21, 3), (14, 8), (33, 5)]
    prompts, requests = _greedy_requests(shapes, seed=5)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    engine = Engine(llama, max_batch=3, max_queue=8, max_len=64, compile=True)
    try:
        assert [engine._compiled_step.padded_rows(rows) for rows in (1, 2, 3)] == [1, 2, 3]
        log = _run(engine, requests[:1])
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 3  # sizes 1, 2, 3 at once
        log.update({i + 1: got for i, got in _run(engine, requests[1:]).items()})
    finally:
        engine.shutdown()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 3
    for i, (prompt, (_, new)) in enumerate(zip(prompts, shapes)):
        expected = llama.generate(torch.tensor([prompt]), max_new_tokens=new, min_new_tokens=new, do_sample=False)
        assert [token for token, _ in log[i]] == expected[0, len(prompt):].tolist(), i
