"""packed_products: row_products.cpp as the operator compiled CPU decoding steps call for their products, over
weights that inductor packs once, as the step compiles."""

from __future__ import annotations

import logging
import subprocess

import pytest
import torch
import torch.nn.functional as F

import leanformers
from leanformers import packed_products

PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 11, 12, 13]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
GREEDY = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0, return_dict_in_generate=True,
              output_logits=True)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.2)


@pytest.fixture(scope="module")
def operator():
    assert packed_products.load(), "packed_products.cpp should build wherever inductor compiles for the CPU"


@pytest.mark.parametrize("rows", [1, 3, 8, 9, 40])
@pytest.mark.parametrize("columns", [5, 32, 100])
def test_operator_gives_the_products_of_f_linear(operator, rows, columns):
    torch.manual_seed(rows * columns)
    x, weight, bias = torch.randn(rows, 70), torch.randn(columns, 70), torch.randn(columns)
    for b in (bias, None):
        torch.testing.assert_close(packed_products.linear(x, weight, b), F.linear(x, weight, b), rtol=1e-5, atol=1e-5)
    wide = torch.randn(rows, 140)[:, ::2]  # rows of a wider tensor: copied to unit stride first
    torch.testing.assert_close(packed_products.linear(wide, weight, bias), F.linear(wide, weight, bias))


def _generate(model, **options):
    with torch.no_grad():
        return model.generate(PROMPTS, attention_mask=MASK, **GREEDY, **options)


def _gpt2():
    torch.manual_seed(0)
    config = leanformers.AutoConfig.for_model("gpt2", **GPT2)
    return leanformers.AutoModelForCausalLM.from_config(config).eval()


def test_compiled_steps_call_it_over_weights_packed_once(operator):
    """GPT-2's Conv1D weights are transposed views: packed as constants too, never again at a step."""
    torch._dynamo.reset()
    model = _gpt2()
    eager = _generate(model)
    config = leanformers.CompileConfig(options={"cpp.enable_kernel_profile": True})  # inductor's kernels by name
    _generate(model, cache_implementation="static", compile_config=config)  # compiles
    with torch.profiler.profile() as profile:
        stepped = _generate(model, cache_implementation="static", compile_config=config)
    names = [event.name for event in profile.events()]
    assert names.count("leanformers::packed_linear") >= 5 * (4 * GPT2["n_layer"] + 1)  # every product, every step
    assert not [name for name in names if "cpp_fused" in name and ("pad" in name or "clone" in name)]
    assert torch.equal(stepped.sequences, eager.sequences)
    torch.testing.assert_close(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4)


def test_a_failed_build_leaves_inductor_products(monkeypatch, caplog):
    def fail():
        raise subprocess.CalledProcessError(1, ["c++"], stderr="no compiler here")

    monkeypatch.setattr(packed_products, "_block", None)
    monkeypatch.setattr(packed_products, "_failed", False)
    monkeypatch.setattr(packed_products, "_built", fail)
    torch._dynamo.reset()
    model = _gpt2()
    eager = _generate(model)
    with caplog.at_level(logging.WARNING, logger="leanformers.packed_products"):
        with torch.profiler.profile() as profile:
            stepped = _generate(model, cache_implementation="static", compile_config=leanformers.CompileConfig())
    assert "no compiler here" in caplog.text
    assert "leanformers::packed_linear" not in [event.name for event in profile.events()]
    assert torch.equal(stepped.sequences, eager.sequences)
    torch._dynamo.reset()  # later tests compile with the operator again


def test_one_row_steps_keep_inductor_products(operator):
    torch._dynamo.reset()
    model = _gpt2()
    with torch.no_grad():
        eager = model.generate(PROMPTS[:1], **GREEDY)
        options = dict(cache_implementation="static", compile_config=leanformers.CompileConfig())
        model.generate(PROMPTS[:1], **GREEDY, **options)  # compiles
        with torch.profiler.profile() as profile:
            stepped = model.generate(PROMPTS[:1], **GREEDY, **options)
    assert "leanformers::packed_linear" not in [event.name for event in profile.events()]
    assert torch.equal(stepped.sequences, eager.sequences)
