"""step_operators: the operators compiled CPU decoding steps call for their products (row_products.cpp, over weights
that inductor packs once, as the step compiles) and for the attention of their one new token per row."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import leanformers
from leanformers import step_operators

PROMPTS = torch.tensor([[5, 6, 7, 8, 9], [0, 0, 11, 12, 13]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
GREEDY = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, pad_token_id=0, return_dict_in_generate=True,
              output_logits=True)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.2)


@pytest.fixture(scope="module")
def operator():
    assert step_operators.load(), "step_operators.cpp should build wherever inductor compiles for the CPU"


@pytest.mark.parametrize("rows", [1, 3, 8, 9, 40])
@pytest.mark.parametrize("columns", [5, 32, 100])
def test_operator_gives_the_products_of_f_linear(operator, rows, columns):
    torch.manual_seed(rows * columns)
    x, weight, bias = torch.randn(rows, 70), torch.randn(columns, 70), torch.randn(columns)
    for b in (bias, None):
        torch.testing.assert_close(step_operators.linear(x, weight, b), F.linear(x, weight, b), rtol=1e-5, atol=1e-5)
    wide = torch.randn(rows, 140)[:, ::2]  # rows of a wider tensor: copied to unit stride first
    torch.testing.assert_close(step_operators.linear(wide, weight, bias), F.linear(wide, weight, bias))


@pytest.mark.parametrize("dim", [5, 16, 32, 64, 100, 128])  # head sizes of whole vectors run a kernel of their own
@pytest.mark.parametrize("heads, key_heads", [(4, 4), (6, 2), (9, 3)])
def test_attention_gives_sdpa_outputs(operator, dim, heads, key_heads):
    torch.manual_seed(dim * heads)
    q, k, v = torch.randn(3, heads, 1, dim), torch.randn(3, key_heads, 40, dim), torch.randn(3, key_heads, 40, dim)
    keep = torch.rand(3, 1, 1, 40) > 0.4
    keep[:, ..., -1] = True
    additive = torch.randn(3, 1, 1, 40).masked_fill(~keep, float("-inf"))
    additive[0, ..., :5] = torch.finfo(torch.float32).min  # what layers.additive gives masked keys
    per_head = torch.randn(3, heads, 1, 40)
    groups = heads // key_heads
    k_all, v_all = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    for mask in (None, keep, additive, per_head):
        expected = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask, scale=0.3)
        torch.testing.assert_close(step_operators.step_attention(q, k, v, mask, 0.3), expected)
    expected = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=keep)
    transposed = k.transpose(2, 3).contiguous().transpose(2, 3)  # keys of unit stride over positions, not dim
    torch.testing.assert_close(step_operators.step_attention(q, transposed, v, keep, None), expected)


def test_attention_of_a_row_that_masks_every_key_is_zero_as_sdpa_gives(operator):
    q, k, v = torch.randn(2, 2, 1, 16), torch.randn(2, 2, 7, 16), torch.randn(2, 2, 7, 16)
    keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    keep[1] = False
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert not expected[1].any()
    torch.testing.assert_close(step_operators.step_attention(q, k, v, keep, None), expected)


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
    assert names.count("leanformers::step_attention") >= 5 * GPT2["n_layer"]
    assert not [name for name in names if "cpp_fused" in name and ("pad" in name or "clone" in name)]
    assert torch.equal(stepped.sequences, eager.sequences)
    torch.testing.assert_close(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4)


def test_compiled_grouped_query_steps_attend_through_the_operator(operator):
    torch._dynamo.reset()
    torch.manual_seed(0)
    config = leanformers.AutoConfig.for_model("llama", vocab_size=99, hidden_size=32, intermediate_size=64,
                                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    model = leanformers.AutoModelForCausalLM.from_config(config).eval()
    eager = _generate(model)
    _generate(model, cache_implementation="static", compile_config=leanformers.CompileConfig())  # compiles
    with torch.profiler.profile() as profile:
        stepped = _generate(model, cache_implementation="static", compile_config=leanformers.CompileConfig())
    assert [event.name for event in profile.events()].count("leanformers::step_attention") >= 5 * 2
    assert torch.equal(stepped.sequences, eager.sequences)
    torch.testing.assert_close(torch.stack(stepped.logits), torch.stack(eager.logits), rtol=1e-4, atol=1e-4)


def test_a_failed_build_leaves_inductor_products(monkeypatch, caplog):
    def fail():
        raise subprocess.CalledProcessError(1, ["c++"], stderr="no compiler here")

    monkeypatch.setattr(step_operators, "_block", None)
    monkeypatch.setattr(step_operators, "_failed", False)
    monkeypatch.setattr(step_operators, "_built", fail)
    torch._dynamo.reset()
    model = _gpt2()
    eager = _generate(model)
    with caplog.at_level(logging.WARNING, logger="leanformers.step_operators"):
        with torch.profiler.profile() as profile:
            stepped = _generate(model, cache_implementation="static", compile_config=leanformers.CompileConfig())
    assert "no compiler here" in caplog.text
    names = [event.name for event in profile.events()]
    assert "leanformers::packed_linear" not in names and "leanformers::step_attention" not in names
    assert torch.equal(stepped.sequences, eager.sequences)
    torch._dynamo.reset()  # later tests compile with the operator again


def test_each_processor_keeps_its_own_build(monkeypatch):
    """Built with -march=native: machines sharing a cache folder must not load each other's library (an AVX-512
    build on an AVX2 machine, or one AVX-512 processor's extensions on another)."""
    here = step_operators.processor()
    assert here.splitlines()[0] == torch.backends.cpu.get_cpu_capability()
    if Path("/proc/cpuinfo").exists():
        assert here.splitlines()[1].startswith("flags")
    command = step_operators.compile_command(step_operators.SOURCES[0])
    paths = set()
    others = ("AVX2\nflags : fpu avx2", "AVX512\nflags : fpu avx2 avx512f", "AVX512\nflags : avx512f amx_tile")
    for other in (here, *others):
        monkeypatch.setattr(step_operators, "processor", lambda: other)
        paths.add(step_operators.library_path(command))
    assert len(paths) == 4


def test_one_row_steps_keep_inductor_products_and_attend_through_the_operator(operator):
    torch._dynamo.reset()
    model = _gpt2()
    with torch.no_grad():
        eager = model.generate(PROMPTS[:1], **GREEDY)
        options = dict(cache_implementation="static", compile_config=leanformers.CompileConfig())
        model.generate(PROMPTS[:1], **GREEDY, **options)  # compiles
        with torch.profiler.profile() as profile:
            stepped = model.generate(PROMPTS[:1], **GREEDY, **options)
    names = [event.name for event in profile.events()]
    assert "leanformers::packed_linear" not in names
    assert names.count("leanformers::step_attention") >= 5 * GPT2["n_layer"]
    assert torch.equal(stepped.sequences, eager.sequences)
