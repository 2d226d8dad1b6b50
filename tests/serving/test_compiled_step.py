"""`Engine(compile=True)` (`leanformers serve --compile`): on CPU one library compiled ahead of time runs every
prompt and decoding step, and gives each request generate()'s greedy tokens, alone or in a batch that grows and
shrinks; the CUDA form (fixed-shape graphs) does too, run here without CUDA graphs; where compiling cannot apply it
is refused at start."""

from __future__ import annotations

import copy
import json
import subprocess
import threading

import pytest
import torch

import leanformers
from leanformers.serving import build_state, compiled_step, exported_build, load
from leanformers.serving.engine import Engine, GenerationRequest
from leanformers.serving.exported_step import ExportedStep, step_key


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


def _expect_generate(model, prompts, shapes, log):
    for i, (prompt, (_, new)) in enumerate(zip(prompts, shapes)):
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                  return_dict_in_generate=True, output_logits=True)
        tokens = expected.sequences[0, len(prompt):].tolist()
        assert [token for token, _ in log[i]] == tokens, i
        last = float(expected.logits[-1][0].log_softmax(-1)[tokens[-1]])  # a compiled step's logprob
        assert log[i][-1][1] == pytest.approx(last, abs=1e-4), i


@pytest.mark.parametrize("kind,prefix_cache", [("llama", 0), ("gpt2", 0), ("llama", 256)])
def test_the_exported_step_serves_every_request_like_generate(kind, prefix_cache, tiny_llama_dir, tiny_gpt2_dir):
    """One compiled library runs prompts alone, prompts together (of different lengths, padded, written straight
    into their slots; with a prefix cache, after different reused prefixes), a prompt longer than a chunk (three
    chunks) and decoding steps of a batch that grows and shrinks."""
    model = leanformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir if kind == "llama" else tiny_gpt2_dir)
    shapes = [(27, 5), (5, 6), (23, 9), (30, 3), (40, 12), (150, 4)]  # (prompt tokens, new tokens)
    prompts, requests = _greedy_requests(shapes, seed=3)
    for prompt in prompts[2:5]:  # the first prompt's first 17 tokens begin three of the later ones
        prompt[:17] = prompts[0][:17]
    engine = Engine(model.eval(), max_batch=4, max_queue=8, max_len=200, compile=True, prefill_chunk=64,
                    prefix_cache=prefix_cache)
    try:
        log = _run(engine, requests[:1])  # alone
        log.update({i + 1: got for i, got in _run(engine, requests[1:]).items()})  # 4 together, the long one waits
    finally:
        engine.shutdown()
    assert engine._exported is not None and engine._compiled_step is None
    assert engine.metrics.reused_prompt_tokens == (3 * 16 if prefix_cache else 0)  # two blocks of 8 each
    _expect_generate(model, prompts, shapes, log)


def _step_logits(step, prompt):
    pairs = step.buffers(1, prompt.shape[1])
    keys, values = zip(*pairs)
    with torch.inference_mode():
        return step(prompt, torch.tensor([0]), torch.tensor([prompt.shape[1] - 1]), prompt.shape[1], keys, values)[0]


def test_the_exported_step_is_compiled_once_per_shape_and_reads_the_models_own_weights(llama):
    first = ExportedStep(llama)
    again = ExportedStep(llama)
    assert again.folder == first.folder and again.build_seconds is None  # found compiled: no child this time
    other = copy.deepcopy(llama)
    other.config.rms_norm_eps *= 2  # another configuration, another library
    assert step_key(other) != step_key(llama)
    assert again.packed  # the weights' products run on oneDNN, each weight packed for it at load
    assert sorted(["q_proj", "k_proj", "v_proj"]) in _stacked(again)  # one product for the three, weights stacked
    prompt = torch.tensor([[5, 6, 7, 8]])
    before = _step_logits(again, prompt)
    with torch.no_grad():
        assert before == pytest.approx(llama(input_ids=prompt).logits[0, -1], abs=1e-4)
        norm = llama.base_model.norm.weight
        norm.mul_(2)  # in place: the library reads this very tensor (the final norm's scale doubles the logits)
        try:
            assert _step_logits(again, prompt) == pytest.approx(2 * before, abs=1e-4)
        finally:
            norm.div_(2)


def _stacked(step, packed=True) -> list:
    """The module names (sorted) of each constant of `step` made by stacking several of the model's tensors."""
    recipe = json.loads((step.folder / "spec.json").read_text(encoding="utf-8"))["recipe"]
    return [sorted(name.split(".")[-2] for name, _ in entry["parts"]) for entry in recipe.values()
            if entry["pack"] == packed and len(entry["parts"]) > 1]


def test_the_recipe_names_the_tensors_each_constant_is_stacked_from():
    torch.manual_seed(0)
    own = {"q": torch.randn(6, 16), "k": torch.randn(2, 16), "conv": torch.randn(16, 4), "empty": torch.empty(0, 16),
           "q_bias": torch.randn(6), "k_bias": torch.randn(2), "zeros": torch.zeros(2), "more_zeros": torch.zeros(2)}
    own["tied"] = own["q"]  # one tensor under two names

    def packed(*weights):
        return torch.ops.mkldnn._reorder_linear_weight(torch.cat(weights), 8)
    assert exported_build._packed_parts(packed(own["k"], own["q"]), own) == [["k", False], ["q", False]]
    assert exported_build._packed_parts(packed(own["conv"].t()), own) == [["conv", True]]  # GPT-2's Conv1D
    assert exported_build._packed_parts(packed(torch.randn(3, 16)), own) is None  # not the model's
    assert exported_build._stacked_parts(torch.cat([own["q_bias"], own["k_bias"]]), own) == [["q_bias", False],
                                                                                             ["k_bias", False]]
    assert exported_build._stacked_parts(torch.zeros(2), own) is None  # two tensors match: none is taken


def test_stacked_biases_are_made_from_the_models_own(llama):
    """With biases on q, k and v (Qwen2's attention), the library adds them stacked: that constant, too, is made
    at load from the model's own tensors."""
    config = copy.deepcopy(llama.config)
    config.attention_bias = True
    torch.manual_seed(0)
    biased = type(llama)(config).eval()
    with torch.no_grad():
        for name, parameter in biased.named_parameters():
            if name.endswith("bias"):
                parameter.normal_()  # not zeros: the biases change the logits
    step = ExportedStep(biased)
    assert step.packed and sorted(["q_proj", "k_proj", "v_proj"]) in _stacked(step, packed=False)
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        assert _step_logits(step, prompt) == pytest.approx(biased(input_ids=prompt).logits[0, -1], abs=1e-4)


def test_a_server_model_gives_up_each_weight_once_packed(llama):
    served = copy.deepcopy(llama)
    step = ExportedStep(served, release_weights=True)
    layer = served.base_model.layers[0]
    assert layer.mlp.down_proj.weight.numel() == layer.self_attn.q_proj.weight.numel() == 0  # held once, packed
    assert served.base_model.norm.weight.numel() > 0  # read as it is: kept
    prompt = torch.tensor([[9, 4, 7, 1, 3]])
    with torch.no_grad():
        assert _step_logits(step, prompt) == pytest.approx(llama(input_ids=prompt).logits[0, -1], abs=1e-4)


def test_compiling_is_refused_where_it_cannot_apply(llama):
    with pytest.raises(ValueError, match="batch invariance"):
        Engine(llama, compile=True, invariant=True)
    unsupported = copy.copy(llama)  # a model whose forward was not written for a compiled step
    unsupported.__class__ = type("Unsupported", (type(llama),), {"_supports_compiled_decoding": False})
    with pytest.raises(ValueError, match="no compiled decoding step"):
        Engine(unsupported, compile=True)


def test_a_compiling_server_is_compiled_before_it_takes_requests(tiny_llama_dir):
    state = build_state(load(str(tiny_llama_dir)), max_batch=2, max_len=64, compile=True)
    try:
        assert (state.engine._exported.folder / "step.so").is_file()
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


def test_a_failed_compilation_names_the_error_and_leaves_no_step_behind(llama, monkeypatch, tmp_path):
    monkeypatch.setenv("LEANFORMERS_CACHE", str(tmp_path))
    failed = subprocess.CompletedProcess(args=[], returncode=1, stdout="", stderr="error: no C++ compiler found")
    monkeypatch.setattr(exported_build.subprocess, "run", lambda *args, **kwargs: failed)
    with pytest.raises(RuntimeError, match="(?s)compiling the serving step failed.*no C\\+\\+ compiler.*without --compile"):
        ExportedStep(llama)
    assert list((tmp_path / "serve-steps").iterdir()) == []  # nothing a later server would take for a compiled step
