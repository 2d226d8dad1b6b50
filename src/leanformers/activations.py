"""Activations as modules and head pruning of linear layers: what users see on the modules (hookable, replaceable
`intermediate_act_fn`, `prune_heads`); the math stays in the functions of layers.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as nn_module

from . import products
from .layers import activation

# activations that are torch.nn classes in Transformers too, so that isinstance checks agree
TORCH_CLASSES = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "swish": nn.SiLU, "tanh": nn.Tanh,
                 "leaky_relu": nn.LeakyReLU}


class Activation(nn.Module):
    """An activation function of layers.ACTIVATIONS as a module (named by `name`)."""

    def __init__(self, name: str, function):
        super().__init__()
        self.name, self.function = name, function

    def forward(self, x):
        return self.function(x)

    def extra_repr(self) -> str:
        return self.name


def activation_module(name) -> nn.Module:
    """The activation a config names, as a module (a module given as the config value is used as is)."""
    if isinstance(name, nn.Module):
        return name
    if isinstance(name, str) and name in TORCH_CLASSES:
        return TORCH_CLASSES[name]()
    return Activation(name if isinstance(name, str) else getattr(name, "__name__", "custom"), activation(name))


def run_activation(module: nn.Module, x):
    """`module(x)`, with the function of an `Activation` called directly when nothing hooks or patches the module:
    the module call costs microseconds, as much as the activation itself on a decoding step's few rows."""
    return module.function(x) if _plain_activation(module) else module(x)


def _plain_activation(module: nn.Module) -> bool:
    """An `Activation` whose call is exactly its function: not a subclass, not patched or hooked."""
    return (type(module) is Activation and not module._forward_hooks and not module._forward_pre_hooks
            and "forward" not in module.__dict__ and not nn_module._global_forward_hooks
            and not nn_module._global_forward_pre_hooks)


def linear_then_activation(x, layer: nn.Linear, module: nn.Module):
    """`module(layer(x))`, with an exact GELU computed inside the product's kernel where products.linear_gelu can
    (nothing hooks or patches either module)."""
    if _plain_activation(module) and module.function is F.gelu and products.plain_linear(layer):
        return products.linear_gelu(x, layer.weight, layer.bias)
    return module(products.few_rows_linear(x, layer))


def pruneable_heads(heads, num_heads: int, head_size: int, already_pruned: set) -> tuple[set, torch.Tensor]:
    """(heads newly pruned, indices of the projection rows kept) for pruning `heads` (original numbering) of an
    attention layer that has `num_heads` heads left after `already_pruned`."""
    total = num_heads + len(already_pruned)
    if any(not 0 <= head < total for head in heads):
        raise ValueError(f"Cannot prune heads {sorted(heads)}: the layer's heads are numbered 0..{total - 1}.")
    heads = set(heads) - already_pruned
    keep = torch.ones(num_heads, head_size, dtype=torch.bool, device="cpu")  # cpu also inside a meta-device build
    for head in heads:
        keep[head - sum(1 for h in already_pruned if h < head)] = False  # its position among the heads left
    return heads, torch.arange(num_heads * head_size, device="cpu")[keep.view(-1)]


def prune_linear(layer: nn.Linear, index: torch.Tensor, dim: int = 0) -> nn.Linear:
    """A new nn.Linear keeping only the output rows (dim=0) or input columns (dim=1) listed in `index`."""
    index = index.to(layer.weight.device)
    weight = layer.weight.detach().index_select(dim, index)
    out_features, in_features = weight.shape
    pruned = nn.Linear(in_features, out_features, bias=layer.bias is not None, device=weight.device,
                       dtype=weight.dtype)
    with torch.no_grad():
        pruned.weight.copy_(weight)
        if layer.bias is not None:
            pruned.bias.copy_(layer.bias.detach()[index] if dim == 0 else layer.bias.detach())
    return pruned


def prune_attention_heads(owner, attention, heads, projections: tuple[str, ...], output, output_name: str = "dense",
                          heads_attr: str = "num_attention_heads", width_attr: str = "all_head_size",
                          head_size: int | None = None):
    """Removes the heads numbered in `heads` (numbers of the unpruned layer) from an attention layer: the rows of
    `attention`'s query/key/value `projections` and the columns of `output.<output_name>`; the head count and width
    attributes of `attention` shrink, and `owner.pruned_heads` (a set) records the heads gone. `head_size` defaults
    to `attention.attention_head_size`."""
    if not heads:
        return
    head_size = head_size or attention.attention_head_size
    heads, index = pruneable_heads(heads, getattr(attention, heads_attr), head_size, owner.pruned_heads)
    for name in projections:
        setattr(attention, name, prune_linear(getattr(attention, name), index))
    setattr(output, output_name, prune_linear(getattr(output, output_name), index, dim=1))
    setattr(attention, heads_attr, getattr(attention, heads_attr) - len(heads))
    setattr(attention, width_attr, head_size * getattr(attention, heads_attr))
    owner.pruned_heads = owner.pruned_heads | heads
