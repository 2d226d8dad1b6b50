"""packed_weights: products of several rows through oneDNN on a packed copy of each weight (products.py takes them
on AVX2 and AVX-512 processors not made by Intel; oneDNN's kernels run on any x86 processor, so these run
everywhere)."""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from leanformers import activations, packed_weights, products

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@pytest.fixture
def onednn(monkeypatch):
    """products.py's choice where oneDNN pays, whichever processor runs the test."""
    monkeypatch.setattr(products, "ONEDNN_PAYS", True)


@pytest.mark.parametrize("capability, has_kernels", [("AVX512", True), ("AVX2", True), ("DEFAULT", False)])
def test_available_where_onednn_has_vector_kernels(monkeypatch, capability, has_kernels):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert packed_weights.available() is has_kernels


@pytest.mark.parametrize("shape", [(2, 96), (8, 96), (3, 43, 96), (1, 128, 96)])
@pytest.mark.parametrize("bias", [False, True])
def test_products_equal_f_linear(onednn, shape, bias):
    torch.manual_seed(0)
    layer = nn.Linear(96, 200, bias=bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        got, want = products.linear(x, layer.weight, layer.bias), F.linear(x, layer.weight, layer.bias)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert layer.weight in packed_weights._packed


@pytest.mark.parametrize("x_shape, weight_shape, bias_shape", [((4, 10), (5, 12), None), ((4, 4), (0, 4), None),
                                                             ((4, 4), (5, 4), (3,)), ((4, 4), (4,), None)])
@pytest.mark.parametrize("forms", ["onednn", "amd"])
def test_operands_oneDNN_cannot_take_get_f_linear(monkeypatch, forms, x_shape, weight_shape, bias_shape):
    """F.linear's answer or its error (which names the shapes), never oneDNN's; a one-dimensional weight also on
    products.py's other forms."""
    monkeypatch.setattr(products, "ONEDNN_PAYS", forms == "onednn")
    monkeypatch.setattr(products, "SPLIT_PAYS", True)
    monkeypatch.setattr(products, "_COLUMN_FORM_ROWS", 2)
    x, weight = torch.randn(x_shape), torch.randn(weight_shape)
    bias = None if bias_shape is None else torch.randn(bias_shape)
    with torch.no_grad():
        try:
            want = F.linear(x, weight, bias)
        except RuntimeError as error:
            with pytest.raises(RuntimeError, match=str(error)[:20]):
                products.linear(x, weight, bias)
        else:
            torch.testing.assert_close(products.linear(x, weight, bias), want)


def test_a_non_contiguous_input(onednn):
    weight, x = torch.randn(64, 32), torch.randn(6, 10, 32)[:, ::3]
    with torch.no_grad():
        torch.testing.assert_close(products.linear(x, weight), F.linear(x, weight), rtol=1e-5, atol=1e-5)


def test_a_weight_changed_in_place_or_replaced_is_packed_again(onednn):
    layer, x = nn.Linear(32, 48), torch.randn(4, 32)
    with torch.no_grad():
        products.linear(x, layer.weight, layer.bias)
        layer.weight.mul_(-2)  # an optimizer's step, load_state_dict's copy_
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)
        layer.weight.data = torch.randn(48, 32)  # new storage, same Parameter
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_an_optimizer_step_drops_the_copies(onednn, fused):
    """A fused optimizer changes the weights without counting a version."""
    torch.manual_seed(0)
    layer, x = nn.Linear(32, 48), torch.randn(4, 32)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=fused)
    with torch.no_grad():
        products.linear(x, layer.weight, layer.bias)
    layer(x).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)


def test_forget_after_a_change_through_data(onednn):
    layer, x = nn.Linear(32, 48), torch.randn(4, 32)
    with torch.no_grad():
        products.linear(x, layer.weight, layer.bias)
        layer.weight.data.mul_(-2)  # .data counts no version
        packed_weights.forget()
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)


def test_a_view_made_at_every_call_is_packed_once(onednn, monkeypatch):
    """GPT-2's Conv1D passes `weight.t()`, a new tensor at each call: its copy is kept with the weight."""
    packings = []
    reorder = torch.ops.mkldnn._reorder_linear_weight
    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight",
                        lambda *args: packings.append(1) or reorder(*args), raising=False)
    weight = nn.Parameter(torch.randn(48, 32).t())  # (in, out), laid out so that its (out, in) view is row-major
    x = torch.randn(4, 32)
    with torch.no_grad():
        for _ in range(3):
            torch.testing.assert_close(products.linear(x, weight.t()), x @ weight, rtol=1e-5, atol=1e-5)
    assert len(packings) == 1


def test_views_of_one_weight_keep_a_copy_each(onednn):
    weight, x = torch.randn(96, 32), torch.randn(4, 32)
    with torch.no_grad():
        for _ in range(2):
            for rows in (slice(0, 32), slice(32, 96), slice(None)):
                part = weight[rows]
                torch.testing.assert_close(products.linear(x, part), F.linear(x, part), rtol=1e-5, atol=1e-5)
        assert len(packed_weights._packed[weight]) == 3


def test_a_weight_made_under_inference_mode(onednn):
    with torch.inference_mode():
        layer, x = nn.Linear(32, 48), torch.randn(4, 32)  # an inference tensor counts no versions
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)
        layer.weight.data = torch.randn(48, 32)
        torch.testing.assert_close(products.linear(x, layer.weight, layer.bias), layer(x), rtol=1e-5, atol=1e-5)


def test_the_packed_copy_goes_with_its_weight(onednn):
    weight = torch.randn(16, 8)
    with torch.no_grad():
        products.linear(torch.randn(2, 8), weight)
    before = len(packed_weights._packed)
    del weight
    gc.collect()
    assert len(packed_weights._packed) == before - 1


def test_without_packing_no_copy_is_kept(onednn, monkeypatch):
    monkeypatch.setattr(packed_weights, "KEEP_PACKED", False)
    weight, x = torch.randn(40, 24), torch.randn(5, 24)
    with torch.no_grad():
        torch.testing.assert_close(products.linear(x, weight), F.linear(x, weight), rtol=1e-5, atol=1e-5)
    assert weight not in packed_weights._packed


def test_one_row_autograd_and_autocast_keep_the_other_forms(onednn, monkeypatch):
    taken = []
    monkeypatch.setattr(packed_weights, "linear", lambda *args: taken.append(1) or F.linear(*args[:3]))
    layer = nn.Linear(24, 40)
    with torch.no_grad():
        products.linear(torch.randn(1, 24), layer.weight, layer.bias)  # one row: products.py's split
    products.linear(torch.randn(4, 24), layer.weight, layer.bias).sum().backward()
    assert layer.weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert products.linear(torch.randn(4, 24), layer.weight).dtype == torch.bfloat16  # autocast casts F.linear
    assert taken == []


@pytest.mark.parametrize("through_onednn, gelu_in_product", [(True, True), (True, False), (False, False)])
def test_linear_then_gelu_equals_the_two_calls(monkeypatch, through_onednn, gelu_in_product):
    """oneDNN's GELU inside its product (AVX-512), or torch's after it, in place (AVX2), or neither."""
    monkeypatch.setattr(products, "ONEDNN_PAYS", through_onednn)
    monkeypatch.setattr(products, "GELU_IN_PRODUCT", gelu_in_product)
    torch.manual_seed(0)
    layer, gelu = nn.Linear(64, 256), activations.activation_module("gelu")
    x = torch.randn(2, 9, 64) * 3
    with torch.no_grad():
        got = activations.linear_then_activation(x, layer, gelu)
        torch.testing.assert_close(got, F.gelu(layer(x)), rtol=1e-5, atol=1e-5)


def test_a_hooked_or_other_activation_is_called_as_a_module(onednn):
    layer, gelu, seen = nn.Linear(16, 32), activations.activation_module("gelu"), []
    gelu.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    x = torch.randn(3, 16)
    with torch.no_grad():
        activations.linear_then_activation(x, layer, gelu)
        tanh_form = activations.linear_then_activation(x, layer, activations.activation_module("gelu_new"))
    assert seen == [torch.Size([3, 32])]
    torch.testing.assert_close(tanh_form, F.gelu(layer(x), approximate="tanh"), rtol=1e-5, atol=1e-5)
