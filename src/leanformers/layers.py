"""Shared math for every architecture: attention, masks, activations. Functions, not modules."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------------- heads
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, seq, heads * head_dim) -> (batch, heads, seq, head_dim)"""
    batch, seq, width = x.shape
    return x.view(batch, seq, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, seq, head_dim) -> (batch, seq, heads * head_dim)"""
    batch, heads, seq, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * head_dim)


# ---------------------------------------------------------------------- masks
def padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A 0/1 mask (batch, key_len) -> additive mask (batch, 1, 1, key_len); None when nothing is masked.

    Returning None when every position is visible lets SDPA pick its fastest kernel. A mask that is already 3-D or
    4-D (batch, [1,] query, key) of 0/1 values is broadcast the same way.
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() == 2:
        if bool(attention_mask.all()):
            return None
        attention_mask = attention_mask[:, None, None, :]
    elif attention_mask.dim() == 3:
        attention_mask = attention_mask[:, None, :, :]
    return additive(attention_mask, dtype)


def additive(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1 = attend, 0 = masked -> 0 / most negative value of `dtype`."""
    return (1.0 - keep.to(dtype)) * torch.finfo(dtype).min


def causal_mask(query_len: int, key_len: int, device, dtype) -> torch.Tensor:
    """(1, 1, query_len, key_len) additive mask; queries are the last `query_len` of the `key_len` positions."""
    keep = torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril(diagonal=key_len - query_len)
    return additive(keep, dtype)[None, None]


# ---------------------------------------------------------------------- attention
def attention(q, k, v, mask=None, dropout_p: float = 0.0, want_weights: bool = False, scale: float | None = None,
              head_mask=None, is_causal: bool = False):
    """Scaled dot-product attention over (batch, heads, seq, head_dim) tensors -> (output, weights or None).

    SDPA does the work; the explicit path runs only when the attention weights are wanted or a head mask is given,
    since SDPA exposes neither.
    """
    if not want_weights and head_mask is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                             is_causal=is_causal and mask is None, scale=scale)
        return out, None
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (batch, heads, query, key)
    if is_causal and mask is None:
        mask = causal_mask(q.shape[-2], k.shape[-2], q.device, scores.dtype)
    if mask is not None:
        scores = scores + mask
    weights = scores.softmax(dim=-1)
    if dropout_p:
        weights = F.dropout(weights, p=dropout_p)
    if head_mask is not None:
        weights = weights * head_mask
    return torch.matmul(weights, v), weights


def expand_head_mask(head_mask, num_layers: int, dtype) -> list:
    """(heads,) or (layers, heads) 0/1 mask -> one (1, heads, 1, 1)-broadcastable mask per layer (or None)."""
    if head_mask is None:
        return [None] * num_layers
    if head_mask.dim() == 1:
        head_mask = head_mask[None].expand(num_layers, -1)
    return [layer_mask.to(dtype)[None, :, None, None] for layer_mask in head_mask]


# ---------------------------------------------------------------------- activations
def _gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _gelu_fast(x):
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": F.gelu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "leaky_relu": F.leaky_relu,
    "linear": lambda x: x,
}


def activation(name):
    """The activation function a config names (a callable config value is used as is)."""
    if callable(name):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; known: {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]
