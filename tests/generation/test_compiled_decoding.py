"""Decoding steps through torch.compile (generation/compiled.py): with a static cache and a compile_config, greedy
decoding gives the eager tokens and logits, left padding included; where it cannot be used, generate() says why and
decodes eagerly."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

import leanformers
from leanformers.generation import compiled

CONFIGS = {
    "gpt2": dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.2),
    "ctrl": dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, dff=37, initializer_range=0.2),
    "llama": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=37, max_position_embeddings=64, initializer_range=0.3),
}
CONFIGS["qwen2"] = CONFIGS["mistral"] = CONFIGS["llama"]
PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 11, 12, 13]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
GREEDY = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0, return_dict_in_generate=True,
              output_logits=True)


def _tiny(model_type):
    torch.manual_seed(0)
    config = leanformers.AutoConfig.for_model(model_type, **CONFIGS[model_type])
    return leanformers.AutoModelForCausalLM.from_config(config).eval()


def _assert_same_decoding(model, backend):
    eager = model.generate(PROMPTS, attention_mask=MASK, **GREEDY)
    stepped = model.generate(PROMPTS, attention_mask=MASK, cache_implementation="static",
                             compile_config=leanformers.CompileConfig(backend=backend), **GREEDY)
    assert torch.equal(stepped.sequences, eager.sequences)
    torch.testing.assert_close(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model_type", ["gpt2", "ctrl", "llama", "mistral", "qwen2"])
def test_captured_steps_decode_like_eager(model_type):
    """backend='eager': torch.compile captures the step into one graph and runs it as is (no kernels to build)."""
    torch._dynamo.reset()
    _assert_same_decoding(_tiny(model_type), backend="eager")


def test_inductor_steps_decode_like_eager_and_report_the_compile_time():
    torch._dynamo.reset()
    compiled.last_compile_seconds = None
    _assert_same_decoding(_tiny("llama"), backend="inductor")
    assert compiled.last_compile_seconds > 0


def test_frozen_weights_are_those_of_the_model_decoding():
    """On CPU inductor freezes the weights into the step: another model of the same shapes, or the same model after
    an in-place change of its weights, must not decode with the weights an earlier step froze."""
    torch._dynamo.reset()
    assert compiled.inductor_settings(leanformers.CompileConfig(), torch.device("cpu"))["freezing"]
    first, second = _tiny("llama"), _tiny("llama")
    with torch.no_grad():
        second.model.layers[0].mlp.down_proj.weight.mul_(3.0)
    _assert_same_decoding(first, backend="inductor")
    _assert_same_decoding(second, backend="inductor")
    with torch.no_grad():
        first.lm_head.weight.mul_(-1.0)
    _assert_same_decoding(first, backend="inductor")
    # what the steps froze goes with the models: nothing the compiler built keeps their weights alive
    weights = [weakref.ref(model.lm_head.weight) for model in (first, second)]
    del first, second
    gc.collect()
    assert [weight() for weight in weights] == [None, None]


@pytest.mark.parametrize("backend", ["eager", "inductor"])
def test_steps_for_other_shapes_in_turn_decode_like_eager(backend):
    """After its first step a generation checks only the guards that tell its compiled steps apart: steps compiled
    for other batch sizes and cache lengths in turn must each still be picked for their own shapes."""
    torch._dynamo.reset()
    model = _tiny("gpt2")
    for rows, new in ((slice(None), 6), (slice(1), 6), (slice(None), 9), (slice(1, None), 6), (slice(None), 6)):
        eager = model.generate(PROMPTS[rows], attention_mask=MASK[rows], **{**GREEDY, "max_new_tokens": new})
        stepped = model.generate(PROMPTS[rows], attention_mask=MASK[rows], cache_implementation="static",
                                 compile_config=leanformers.CompileConfig(backend=backend),
                                 **{**GREEDY, "max_new_tokens": new})
        assert torch.equal(stepped.sequences, eager.sequences)
        torch.testing.assert_close(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_later_steps_skip_guards_only_in_a_lone_thread(monkeypatch, threads):
    """torch's stance holds for the whole process: with another Python thread alive every step keeps its guards."""
    stances = []
    set_stance = torch.compiler.set_stance
    monkeypatch.setattr(torch.compiler, "set_stance", lambda **kw: stances.append(kw) or set_stance(**kw))
    monkeypatch.setattr(compiled.threading, "active_count", lambda: threads)
    torch._dynamo.reset()
    _assert_same_decoding(_tiny("gpt2"), backend="eager")
    assert stances == ([{"skip_guard_eval_unsafe": True}] * (GREEDY["max_new_tokens"] - 2) if threads == 1 else [])


def test_options_override_the_cpu_settings():
    settings = compiled.inductor_settings(leanformers.CompileConfig(options={"freezing": False}), torch.device("cpu"))
    assert settings["freezing"] is False and settings["max_autotune"]
    assert compiled.inductor_settings(leanformers.CompileConfig(backend="eager"), torch.device("cpu")) == {}


SHARED_CACHE_RUN = """
import json, sys, torch, leanformers
from torch._dynamo.utils import counters
sys.path.insert(0, sys.argv[1])
from test_compiled_decoding import GREEDY, MASK, PROMPTS, _tiny
model = _tiny("llama")
eager = model.generate(PROMPTS, attention_mask=MASK, **GREEDY)
stepped = model.generate(PROMPTS, attention_mask=MASK, cache_implementation="static",
                         compile_config=leanformers.CompileConfig(), **GREEDY)
print(json.dumps({"same": torch.equal(stepped.sequences, eager.sequences)
                  and torch.allclose(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4),
                  "cache": sorted(key for key in counters["inductor"] if key.startswith("fxgraph_cache"))}))
"""


def test_a_compile_cache_shared_with_another_vector_width_is_not_reused(tmp_path):
    """Inductor's cache of compiled graphs knows its settings, not the CPU: a step compiled for AVX2 (8 floats a
    vector) and handed back on an AVX-512 machine (16) wrote past its buffers. The vector width is now a setting."""
    def run(**env):
        done = subprocess.run([sys.executable, "-c", SHARED_CACHE_RUN, str(Path(__file__).parent)], text=True,
                              capture_output=True, timeout=600,
                              env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path), **env})
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.splitlines()[-1])

    assert run(ATEN_CPU_CAPABILITY="avx2") == {"same": True, "cache": ["fxgraph_cache_miss"]}
    native_width = compiled.inductor_settings(leanformers.CompileConfig(), torch.device("cpu")).get("cpp.simdlen")
    reused = "fxgraph_cache_hit" if native_width == 256 else "fxgraph_cache_miss"
    assert run() == {"same": True, "cache": [reused]}


def test_steps_are_one_graph():
    torch._dynamo.reset()
    model = _tiny("gpt2")
    model.generate(PROMPTS, attention_mask=MASK, cache_implementation="static",
                   compile_config=leanformers.CompileConfig(backend="eager", fullgraph=True), **GREEDY)


def test_returned_static_cache_holds_every_token():
    torch._dynamo.reset()
    model = _tiny("llama")
    out = model.generate(PROMPTS, attention_mask=MASK, cache_implementation="static", return_dict_in_generate=True,
                         compile_config=leanformers.CompileConfig(backend="eager"), max_new_tokens=4,
                         min_new_tokens=4, pad_token_id=0)
    assert out.past_key_values.get_seq_length() == PROMPTS.shape[1] + 4 - 1  # the last token is never fed back


@pytest.mark.parametrize("case", ["dynamic cache", "attentions", "unsupported model"])
def test_unusable_compile_config_warns_and_decodes_eagerly(case, caplog):
    model = _tiny("llama")
    options = dict(GREEDY, compile_config=leanformers.CompileConfig(backend="eager"))
    if case != "dynamic cache":
        options["cache_implementation"] = "static"
    if case == "attentions":
        options["output_attentions"] = True
    if case == "unsupported model":  # one whose forward was not written for a slot cache
        model.__class__ = type("Unsupported", (type(model),), {"_supports_compiled_decoding": False})
    with caplog.at_level(logging.WARNING, logger="leanformers.generation.compiled"):
        got = model.generate(PROMPTS, attention_mask=MASK, **options)
    assert "compile_config is ignored" in caplog.text
    options.pop("compile_config")
    assert torch.equal(got.sequences, model.generate(PROMPTS, attention_mask=MASK, **options).sequences)
