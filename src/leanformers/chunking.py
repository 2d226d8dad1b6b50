"""Chunked computation along the sequence: the same function over slices of a dimension, to bound peak memory.

Used by the chunked feed-forward (`chunk_size_feed_forward`) and chunked LM heads, and by the chunk-local attention
of long-sequence models (split a sequence into chunks, let each chunk see its neighbours).
"""

from __future__ import annotations

import torch


def apply_in_chunks(fn, chunk_size: int, dim: int, *tensors: torch.Tensor) -> torch.Tensor:
    """`fn(*tensors)` computed on slices of `chunk_size` along `dim` (the last one may be shorter) and
    concatenated; in one call when chunk_size is 0. A position-wise `fn` gives the same result either way."""
    if not chunk_size or tensors[0].shape[dim] <= chunk_size:
        return fn(*tensors)
    pieces = zip(*(tensor.split(chunk_size, dim=dim) for tensor in tensors))
    return torch.cat([fn(*piece) for piece in pieces], dim=dim)


def split_chunks(x: torch.Tensor, chunk_length: int) -> torch.Tensor:
    """(batch, heads, seq, ...) -> (batch, heads, seq // chunk_length, chunk_length, ...)."""
    return x.reshape(*x.shape[:2], -1, chunk_length, *x.shape[3:])


def with_neighbour_chunks(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """(batch, heads, chunks, chunk_length, ...) -> (batch, heads, chunks, (before + 1 + after) * chunk_length, ...):
    for each chunk, the `before` chunks ahead of it, itself and the `after` chunks behind it, in sequence order,
    wrapping around the ends."""
    if before == 0 and after == 0:
        return x
    shifted = [x if i == 0 else x.roll(-i, dims=2) for i in range(-before, after + 1)]  # chunk c sees chunk c + i
    return torch.cat(shifted, dim=3)
