"""`Engine(compile=True)` (`leanformers serve --compile`): on CPU one library compiled ahead of time runs every
prompt and decoding step, and gives each request generate()'s greedy tokens, alone or in a batch that grows and
shrinks; the CUDA form (fixed-shape graphs) does too, run here without CUDA graphs; where compiling cannot apply it
is refused at start."""

from __future__ import annotations

import copy
import ctypes
import json
import subprocess
import threading

import pytest
import torch

import leanformers
from leanformers.serving import build_state, compiled_step, exported_build, load, row_products
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
    assert again.packed  # the weights' products are the step's own, each weight packed for them at load
    recipe = json.loads((again.folder / "spec.json").read_text(encoding="utf-8"))["recipe"]
    assert recipe["base.layers.0.self_attn.q_proj.packed"] == {"weight": "base.layers.0.self_attn.q_proj.weight",
                                                                 "transposed": False}
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


def _c_rows_linear(library, x, packed, bias, columns):
    """row_products.cpp's function called as the compiled step calls it: tensor handles in, a new tensor out."""
    capsules = [torch._C._aoti.unsafe_alloc_void_ptr_from_tensor(t) for t in (x, packed, bias) if t is not None]
    handles = [ctypes.c_void_p(_CAPSULE_POINTER(capsule, None)) for capsule in capsules]
    out = ctypes.c_void_p()
    error = library.aoti_torch_cpu_rows_linear(handles[0], handles[1],
                                               ctypes.byref(handles[2]) if bias is not None else None,
                                               ctypes.c_int64(columns), ctypes.byref(out))
    for capsule in capsules:  # taken back, so freed
        torch._C._aoti.alloc_tensor_by_stealing_from_void_ptr(capsule)
    assert error == 0
    return torch._C._aoti.alloc_tensor_by_stealing_from_void_ptr(_NEW_CAPSULE(out.value, None, None))


_CAPSULE_POINTER, _NEW_CAPSULE = ctypes.pythonapi.PyCapsule_GetPointer, ctypes.pythonapi.PyCapsule_New
_CAPSULE_POINTER.restype, _CAPSULE_POINTER.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_NEW_CAPSULE.restype, _NEW_CAPSULE.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


@pytest.fixture(scope="module")
def products_library(tmp_path_factory):
    path = tmp_path_factory.mktemp("products") / "products.so"
    row_products.compile_products(path)
    block = row_products.load_products(path)
    return ctypes.CDLL(str(path)), block


@pytest.mark.parametrize("columns", [1, 33, 100])
def test_the_steps_products_are_linear_layers_and_each_row_its_own(products_library, columns):
    library, block = products_library
    torch.manual_seed(columns)
    weight, bias, wide = torch.randn(columns, 24), torch.randn(columns), torch.randn(17, 40)
    x = wide[:, 3:27]  # rows further apart than their length, as a slice of a wider tensor is
    packed = row_products.pack(weight, block)
    assert packed.shape == (-(-columns // block), 24, block)
    expected = torch.nn.functional.linear(x, weight, bias)
    assert row_products.rows_linear(x, packed, bias, columns) == pytest.approx(expected, abs=1e-5)  # the eager form
    for rows in (1, 5, 8, 9, 17):  # every tile of rows, whole and split
        for with_bias in (bias, None):
            got = _c_rows_linear(library, x[:rows], packed, with_bias, columns)
            want = expected[:rows] if with_bias is not None else expected[:rows] - bias
            assert got == pytest.approx(want, abs=1e-4)
    alone = [_c_rows_linear(library, x[r:r + 1], packed, bias, columns) for r in range(17)]
    assert torch.equal(torch.cat(alone), _c_rows_linear(library, x, packed, bias, columns))  # bitwise, any batch


def test_the_products_add_the_models_own_biases(llama):
    """With biases on q, k and v (Qwen2's attention), the library's products add the model's own bias tensors."""
    config = copy.deepcopy(llama.config)
    config.attention_bias = True
    torch.manual_seed(0)
    biased = type(llama)(config).eval()
    with torch.no_grad():
        for name, parameter in biased.named_parameters():
            if name.endswith("bias"):
                parameter.normal_()  # not zeros: the biases change the logits
    step = ExportedStep(biased)
    assert step.packed and "base.layers.0.self_attn.k_proj.bias" in step.runner.get_constant_names_to_original_fqns(
    ).values()
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    with torch.no_grad():
        assert _step_logits(step, prompt) == pytest.approx(biased(input_ids=prompt).logits[0, -1], abs=1e-4)


def test_a_half_precision_step_keeps_torchs_products(llama):
    half = copy.deepcopy(llama).to(torch.bfloat16)
    step = ExportedStep(half)
    assert not step.packed  # the step's own products are float32's; the library reads the model's tensors
    prompt = torch.tensor([[2, 7, 1, 8, 2]])
    with torch.no_grad():
        expected = half(input_ids=prompt).logits[0, -1].float()
    tolerance = 16 * torch.finfo(torch.bfloat16).eps * expected.abs().max()  # bfloat16 sums, fused differently
    assert torch.allclose(_step_logits(step, prompt).float(), expected, atol=tolerance, rtol=0)


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
