"""Linear layers stored side by side (packing.py): Llama's q/k/v and gate/up after a load. The packed product must
give what the separate layers give, the checkpoint must not change, and anything that unpacks the layers (a weight
replaced or cast, a hook, autograd) must fall back to the separate layers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import leanformers
from leanformers.packing import _side_by_side, pack_linears, packed_linear


def _loaded(tmp_path, model_type="llama", **extra):
    config_class = {"llama": leanformers.LlamaConfig, "qwen2": leanformers.Qwen2Config}[model_type]
    config = config_class(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, **extra)
    torch.manual_seed(0)
    model_class = leanformers.LlamaForCausalLM if model_type == "llama" else leanformers.Qwen2ForCausalLM
    model_class(config).save_pretrained(tmp_path)
    return leanformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()


def _unpacked(model):
    """A copy whose parameters each own their memory: every packed call falls back to the separate layers."""
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.data = parameter.data.clone()
    return twin


def _groups(model):
    return [group for module in model.modules() if hasattr(module, "packable_linears")
            for group in module.packable_linears()]


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])  # qwen2: q/k/v with biases
def test_loaded_projections_are_packed_and_give_the_same_outputs(tmp_path, model_type):
    model = _loaded(tmp_path, model_type)
    for group in _groups(model):
        assert _side_by_side([layer.weight for layer in group]) is not None
        if group[0].bias is not None:
            assert _side_by_side([layer.bias for layer in group]) is not None
    twin = _unpacked(model)
    assert all(_side_by_side([layer.weight for layer in group]) is None for group in _groups(twin))
    ids = torch.randint(0, 64, (3, 7))
    with torch.no_grad():
        for batch in (ids, ids[:1]):  # many rows, then decoding one row through the cache
            torch.testing.assert_close(model(input_ids=batch).logits, twin(input_ids=batch).logits,
                                       rtol=1e-5, atol=1e-5)
        options = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
        assert torch.equal(model.generate(input_ids=ids, **options), twin.generate(input_ids=ids, **options))


@pytest.mark.parametrize("safe", [True, False])
def test_packed_model_saves_the_same_checkpoint(tmp_path, safe):
    model = _loaded(tmp_path / "first")
    names = [name for name, _ in model.state_dict().items()]
    model.save_pretrained(tmp_path / "again", safe_serialization=safe)
    again = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path / "again")
    assert [name for name, _ in again.state_dict().items()] == names
    for (name, mine), theirs in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(mine, theirs), name
    files = sorted(path.name for path in (tmp_path / "again").iterdir() if "model" in path.name)
    sizes = sum((tmp_path / "again" / name).stat().st_size for name in files)
    assert sizes < 2 * sum(t.numel() * t.element_size() for t in model.state_dict().values())  # no buffer twice


def test_a_replaced_weight_is_used(tmp_path):
    model = _loaded(tmp_path)
    attention = model.model.layers[0].self_attn
    hidden = torch.randn(1, 1, 16)
    with torch.no_grad():
        attention.k_proj.weight = nn.Parameter(torch.randn_like(attention.k_proj.weight))
        _, k, _ = packed_linear(hidden, attention.packable_linears()[0])
    torch.testing.assert_close(k, hidden @ attention.k_proj.weight.t())


def test_a_hooked_layer_is_called(tmp_path):
    model = _loaded(tmp_path)
    mlp, seen = model.model.layers[1].mlp, []
    mlp.up_proj.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3]]))
    assert seen == [torch.Size([1, 3, 32])]


def test_training_reaches_every_packed_weight(tmp_path):
    model = _loaded(tmp_path).train()
    ids = torch.randint(0, 64, (2, 5))
    model(input_ids=ids, labels=ids).loss.backward()
    for group in _groups(model):
        assert all(layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0 for layer in group)


def test_cast_model_still_computes_right(tmp_path):
    model = _loaded(tmp_path)
    twin = _unpacked(model).double()
    model = model.double()  # a cast gives each parameter its own memory: the separate layers run
    ids = torch.randint(0, 64, (2, 4))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, twin(input_ids=ids).logits)


def test_layers_that_differ_are_not_packed():
    wide, narrow = nn.Linear(8, 4), nn.Linear(6, 4)  # different input sizes
    with_bias, without = nn.Linear(8, 4), nn.Linear(8, 4, bias=False)
    assert not pack_linears((wide, narrow)) and not pack_linears((with_bias, without))
    assert pack_linears((wide, with_bias))
