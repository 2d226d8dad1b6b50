"""Disentangled attention (DeBERTa): relative position ids, their log buckets, and the content-to-position and
position-to-content scores added to the attention logits. Functions, not modules."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .layers import capturing


def position_terms(config) -> list[str]:
    """The relative-position score terms the attention adds ("c2p", "p2c"); others are refused."""
    terms = list(config.pos_att_type or [])
    if any(term not in ("c2p", "p2c") for term in terms) or len(set(terms)) != len(terms):
        raise ConfigError(f"pos_att_type={config.pos_att_type!r} is not supported; list 'c2p' and/or 'p2c', each "
                          f"at most once.")
    return terms


def max_relative_positions(config) -> int:
    """The relative distance the position table covers each way (max_position_embeddings when unset)."""
    value = getattr(config, "max_relative_positions", -1)
    return value if value >= 1 else config.max_position_embeddings


def log_bucket_position(relative: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """Distances within half a bucket stay exact; longer ones shrink logarithmically so that `max_position` lands on
    the last bucket. The sign is kept. Computed in float32 like the original, so the rounding matches."""
    sign = torch.sign(relative)
    mid = bucket_size // 2
    near = (relative < mid) & (relative > -mid)
    distance = torch.where(near, torch.full_like(relative, mid - 1), relative.abs())
    ratio = torch.log(distance / mid) / torch.log(torch.tensor((max_position - 1) / mid))
    far = torch.ceil(ratio * (mid - 1)) + mid
    return torch.where(distance <= mid, relative.to(far.dtype), far * sign)


def relative_positions(length: int, buckets: int = -1, max_position: int = -1, device=None) -> torch.Tensor:
    """(length, length) long tensor of query position - key position, log-bucketed when `buckets` > 0."""
    ids = torch.arange(length, dtype=torch.long, device=device)
    relative = ids[:, None] - ids[None, :]
    if buckets > 0 and max_position > 0:
        relative = log_bucket_position(relative, buckets, max_position)
    return relative.long()


def position_index(relative: torch.Tensor, span: int) -> torch.Tensor:
    """Row of the relative-embedding table (2 * span rows) that each (query, key) pair reads.

    The same index serves both directions: position-to-content reads row clamp(-(key - query) + span) at key j
    for query i, which equals clamp((query - key) + span) because the buckets are symmetric around 0."""
    return torch.clamp(relative + span, 0, 2 * span - 1)


def position_window(seq: int, span: int, buckets: int = -1, max_position: int = -1, device=None):
    """-> (the slice of the 2 * span table rows that a `seq`-long input reads, the (seq, seq) index of each
    query/key pair into those rows). Only the rows reached are projected: a short input reads a few of them."""
    relative = relative_positions(seq, buckets, max_position, device)
    if capturing():  # every row: the reach of a symbolic length is not a number to slice with
        return slice(0, 2 * span), position_index(relative, span)
    reach = seq - 1  # the longest distance, bucketed like the others (buckets grow with the distance)
    if buckets > 0 and max_position > 0:
        reach = int(log_bucket_position(torch.as_tensor(reach), buckets, max_position))  # traced: reach is a tensor
    rows = slice(max(span - reach, 0), min(span + reach, 2 * span - 1) + 1)
    return rows, position_index(relative, span) - rows.start


def disentangled_bias(query, key, pos_key, pos_query, index):
    """Relative-position scores (batch, heads, query, key) of one layer.

    query/key: (batch, heads, seq, head_dim), unscaled; pos_key/pos_query: (heads, rows, head_dim) for the table
    rows read, already divided by the attention scale, or None when that term (c2p / p2c) is off; index: (seq, seq)
    into those rows, from `position_window`. Each term is one batched matmul against the small position table and
    one gather, for all heads at once.
    """
    batch, heads, seq = query.shape[:3]
    index = index[None, None].expand(batch, heads, seq, seq)
    bias = None
    if pos_key is not None:  # content -> position: query i . pos_key[index[i, j]]
        c2p = torch.matmul(query, pos_key.transpose(-1, -2))  # (batch, heads, query, rows)
        bias = torch.gather(c2p, -1, index)
    if pos_query is not None:  # position -> content: key j . pos_query[index[i, j]]
        p2c = torch.matmul(pos_query, key.transpose(-1, -2))  # (batch, heads, rows, key)
        p2c = torch.gather(p2c, -2, index)
        bias = p2c if bias is None else bias + p2c
    return bias


def pair_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(batch, seq) 0/1 -> (batch, 1, seq, seq) bool, True where both the query and the key are real tokens; None
    when nothing is padded. A padding query sees no key, so its weights come out uniform, as in the original."""
    if attention_mask is None or (not capturing() and bool(attention_mask.all())):
        return None
    keep = attention_mask.bool()
    return keep[:, None, :, None] & keep[:, None, None, :]


def masked_bias(bias, keep, dtype):
    """The additive term of the attention logits: `bias` (or zeros) with the pairs `keep` leaves out set far below
    any score (half the most negative value of `dtype`, so that adding the scores cannot overflow to -inf in
    float16); `bias` itself when nothing is masked."""
    if keep is None:
        return bias
    fill = torch.finfo(dtype).min / 2
    if bias is None:
        return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, fill)
    return bias.masked_fill(~keep, fill)


def biased_attention(q, k, v, bias, scale: float, dropout_p: float = 0.0, want_weights: bool = False):
    """softmax(q k^T * scale + bias) v over (batch, heads, seq, head_dim) -> (output, weights or None); SDPA unless
    the weights are wanted."""
    if not want_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale), None
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (batch, heads, query, key)
    if bias is not None:
        scores = scores + bias
    weights = scores.softmax(dim=-1)
    if dropout_p:
        weights = F.dropout(weights, p=dropout_p)
    return torch.matmul(weights, v), weights


def attention_scale(head_dim: int, position_terms: int) -> float:
    """1 / sqrt(head_dim * (1 + position_terms)): DeBERTa divides the content and position scores alike."""
    return 1.0 / math.sqrt(head_dim * (1 + position_terms))
