"""The shortcuts Llama decoding takes: the linear layers applied to a few rows, the rotary tables, the row-major
output weight, the step's grouped attention as two products, and a first load that does not pull in torch's compiler
stack. Each must give what the plain computation gives."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import leanformers
from leanformers import layers, products
from leanformers.layers import (StepAttentionProducts, apply_rotary, few_rows_linear, grouped_attention,
                                rotary_tables, rotate)


def _head(vocab=300, width=24, bias=False):
    torch.manual_seed(0)
    return nn.Linear(width, vocab, bias=bias)


@pytest.fixture(params=["amd", "amd-onednn", "intel"])
def processor_forms(request, monkeypatch):
    """Each processor family's choice of forms (products.py), whichever processor runs the test: Intel's, and other
    makers' with oneDNN's kernels (AVX2 or AVX-512) and without them ("amd"; oneDNN runs on any x86 processor)."""
    split, column_rows = (False, 16) if request.param == "intel" else (True, 2)
    monkeypatch.setattr(products, "SPLIT_PAYS", split)
    monkeypatch.setattr(products, "_COLUMN_FORM_ROWS", column_rows)
    monkeypatch.setattr(products, "ONEDNN_PAYS", request.param == "amd-onednn")
    return request.param


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 32, 33])
@pytest.mark.parametrize("bias", [False, True])
def test_few_rows_linear_match_the_linear_layer(processor_forms, rows, bias):
    head = _head(bias=bias)
    hidden = torch.randn(rows, 1, 24)
    with torch.no_grad():
        got, want = few_rows_linear(hidden, head), head(hidden)
    assert got.shape == want.shape and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_few_rows_linear_of_a_non_contiguous_slice():
    head = _head()
    hidden = torch.randn(4, 6, 24)[:, -1:]
    with torch.inference_mode():
        torch.testing.assert_close(few_rows_linear(hidden, head), head(hidden), rtol=1e-5, atol=1e-6)


def test_few_rows_linear_keeps_hooks_and_autograd():
    head, hidden, seen = _head(), torch.randn(4, 1, 24), []
    handle = head.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        few_rows_linear(hidden, head)
    handle.remove()
    assert seen == [torch.Size([4, 1, 300])]  # a hooked head is called, so its hook runs

    few_rows_linear(hidden, head).sum().backward()  # autograd: the plain layer, gradients reach the weight
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


@pytest.fixture
def threads():
    """Sets torch's thread count for one test and restores it afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("out_features", [1024, 1027])  # 1027: rows left over after equal blocks
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rows", [1, 40, 256, 257])  # one row and 33-256 rows are split where it pays, 257 is not
def test_split_over_threads_matches_the_linear_layer(processor_forms, threads, count, out_features, bias, rows):
    threads(count)
    torch.manual_seed(0)
    head = nn.Linear(256, out_features, bias=bias)  # 1 MiB of weight or more: large enough to be split
    hidden = torch.randn(1, rows, 256)
    with torch.inference_mode():
        got, want = few_rows_linear(hidden, head), head(hidden)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 8, 16, 40])
def test_each_processor_family_takes_its_measured_form(processor_forms, monkeypatch, rows):
    split, columns, onednn = [], [], []
    monkeypatch.setattr(products, "_split_linear", lambda *args: split.append(rows) or nn.functional.linear(*args[:3]))
    monkeypatch.setattr(torch, "mm", lambda *args: columns.append(rows) or torch.matmul(*args))
    monkeypatch.setattr(products.packed_weights, "linear",
                        lambda *args: onednn.append(rows) or nn.functional.linear(*args[:3]))
    torch.manual_seed(0)
    weight = torch.randn(1024, 256)  # 1 MiB: large enough to be split
    with torch.inference_mode():
        products.linear(torch.randn(rows, 256), weight)
    if processor_forms == "amd-onednn":  # oneDNN from two rows on, one row split
        assert (split, columns, onednn) == (([rows], [], []) if rows == 1 else ([], [], [rows]))
        return
    assert onednn == []
    if processor_forms == "amd":
        assert (split, columns) == (([], [rows]) if 2 <= rows <= 32 else ([rows], []))
    else:  # Intel: MKL's own form but for 16-32 rows
        assert (split, columns) == ([], [rows] if 16 <= rows <= 32 else [])


def test_the_processor_vendor_is_read(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert products._cpu_vendor(str(info)) == "AuthenticAMD"
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # an Arm processor names no vendor
    assert products._cpu_vendor(str(info)) == ""


def test_rotate_with_tables_equals_apply_rotary_exactly():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 8)
    angles = torch.randn(2, 5, 4)
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()
    half = x.shape[-1] // 2
    by_halves = x * cos[:, None] + torch.cat((-x[..., half:], x[..., :half]), -1) * sin[:, None]
    assert torch.equal(rotate(x, *rotary_tables(cos, sin)), by_halves)
    assert torch.equal(apply_rotary(x, cos, sin), by_halves)


def _tiny_llama(tie: bool):
    config = leanformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie)
    torch.manual_seed(0)
    return leanformers.LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("tie", [True, False])
def test_loaded_output_weight_is_row_major(tmp_path, tie):
    _tiny_llama(tie).save_pretrained(tmp_path)
    model = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.lm_head.weight.is_contiguous()
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tie


def test_batched_decoding_logits_match_full_forward():
    model = _tiny_llama(tie=True)
    ids = torch.randint(0, 64, (4, 6))
    with torch.no_grad():
        full = model(input_ids=ids).logits[:, -1]
        last = model(input_ids=ids, logits_to_keep=1).logits[:, -1]  # 4 rows: the weight @ hidden.T path
    torch.testing.assert_close(last, full, rtol=1e-5, atol=1e-5)


def test_compiled_step_attention_takes_the_products_only_where_asked(monkeypatch):
    taken = []
    products = layers._grouped_step_attention
    monkeypatch.setattr(layers, "_grouped_step_attention", lambda *args: taken.append(1) or products(*args))
    compiled = torch.compile(lambda *qkvm: grouped_attention(*qkvm)[0], dynamic=True)
    q, k, v = torch.randn(3, 6, 1, 16), torch.randn(3, 2, 20, 16), torch.randn(3, 2, 20, 16)
    mask = (torch.arange(20) < torch.tensor([[20], [9], [14]]))[:, None, None]
    with torch.no_grad():
        through_sdpa = compiled(q, k, v, mask)
        with StepAttentionProducts():
            through_products = compiled(q, k, v, mask)
        assert len(taken) == 1  # traced once, with the switch on: each graph is kept for its own setting
        torch.testing.assert_close(compiled(q, k, v, mask), through_sdpa, rtol=0, atol=0)
    assert len(taken) == 1 and not StepAttentionProducts.on
    torch.testing.assert_close(through_products, through_sdpa, rtol=1e-5, atol=1e-6)


def test_first_load_does_not_import_the_compiler_stack(tmp_path):
    _tiny_llama(tie=True).save_pretrained(tmp_path)
    script = ("import sys, leanformers; leanformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
              "print(sorted(m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_training_step_still_reaches_every_weight():
    model = _tiny_llama(tie=True).train()
    ids = torch.randint(0, 64, (4, 6))
    model(input_ids=ids, labels=ids).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
