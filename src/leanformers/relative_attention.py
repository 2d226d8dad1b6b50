"""Relative-position attention of Transformer-XL (Dai et al.): sinusoids of distances and the score shift that turns
"query i against distance slot j" into "query i against key j". Functions, not modules.

Keys run over `mem_len + query_len` positions (the memory, then the segment); distance slot j holds distance
`key_len - 1 - j`, so slot 0 is the farthest key and the last slot distance 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def inverse_frequencies(dim: int) -> torch.Tensor:
    """(dim / 2,) 1 / 10000^(2i / dim): the frequencies of the sinusoid embedding of a distance."""
    return 1 / (10000 ** (torch.arange(0.0, dim, 2.0) / dim))


def distance_embeddings(key_len: int, inv_freq: torch.Tensor, clamp_len: int = -1, dtype=None) -> torch.Tensor:
    """(key_len, dim) embeddings of the distances key_len-1 ... 0 (each clamped to `clamp_len` when it is > 0):
    sines of distance * frequency, then cosines."""
    distances = torch.arange(key_len - 1, -1, -1.0, device=inv_freq.device, dtype=dtype or inv_freq.dtype)
    if clamp_len > 0:
        distances = distances.clamp(max=clamp_len)
    angles = torch.outer(distances, inv_freq.to(distances.dtype))
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rel_shift(scores: torch.Tensor) -> torch.Tensor:
    """(..., query_len, key_len) scores against distance slots -> the same against keys.

    Query i (the i-th of the segment, after `key_len - query_len` memory slots) reads slot
    `j + query_len - 1 - i` for key j. A zero column in front, a reshape that moves each row one step, and the
    first row dropped do that without a gather; the slots past the end wrap into keys a causal mask hides."""
    *lead, q, k = scores.shape
    padded = F.pad(scores, (1, 0))                   # (..., q, k + 1)
    padded = padded.reshape(*lead, k + 1, q)         # rows shifted by one at each step
    return padded[..., 1:, :].reshape(*lead, q, k)


def segment_attention_mask(query_len: int, mem_len: int, memory_size: int, same_length: bool,
                           device=None) -> torch.Tensor:
    """(query_len, mem_len + query_len) bool mask, True where a query must not look: future keys, and with
    `same_length` the keys beyond the `memory_size + 1` most recent so that every query sees as many keys."""
    key_len = mem_len + query_len
    ones = torch.ones(query_len, key_len, dtype=torch.bool, device=device)
    mask = torch.triu(ones, diagonal=1 + mem_len)
    if same_length:
        beyond = key_len - memory_size
        shift = query_len - beyond if beyond > 0 else query_len
        mask = mask | torch.tril(ones, diagonal=-shift)
    return mask


__all__ = ["inverse_frequencies", "distance_embeddings", "rel_shift", "segment_attention_mask"]
