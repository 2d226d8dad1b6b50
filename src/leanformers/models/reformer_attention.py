"""Reformer's self-attention layers: LSH attention (positions hashed into buckets by random rotations, sorted by
bucket, attended chunk by chunk) and chunk-local attention, with their one-token decoding steps over a cache."""

from __future__ import annotations

import logging
import math
from functools import reduce
from operator import mul

import torch
from torch import nn
from torch.nn import functional as F

from ..chunking import split_chunks, with_neighbour_chunks
from ..errors import ConfigError
from ..layers import capturing

logger = logging.getLogger("leanformers")

# fill values of masked scores; a position attending to itself is masked more softly, so that a query with no other
# key still attends to itself
_MASKED = {torch.float16: -1e4}
_OWN_POSITION = {torch.float16: -1e3}


def stable_argsort(x: torch.Tensor) -> torch.Tensor:
    """argsort along the last dimension; equal values keep their order."""
    length = x.shape[-1]
    offsets = torch.arange(length, device=x.device).expand(x.shape)
    return torch.argsort(length * x + offsets % length, dim=-1)


def bucket_factors(num_buckets) -> list[int]:
    factors = [num_buckets] if isinstance(num_buckets, int) else list(num_buckets)
    if any(factor % 2 for factor in factors):
        raise ConfigError(f"num_buckets={num_buckets}: every number of buckets (or factor of it) must be even.")
    return factors


def random_rotations(shape, like: torch.Tensor, seed: int | None) -> torch.Tensor:
    """Gaussian rotations; from a generator seeded with `seed` when given (the global one is left alone)."""
    if seed is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    if capturing():
        raise ValueError(f"hash_seed={seed}: LSH attention re-seeds its rotations on every call, which a graph "
                         f"recorded by torch.jit.trace or torch.export cannot do (it would hash with other "
                         f"rotations than the eager model). Record the model with hash_seed=None (new rotations "
                         f"each call, from torch's random state) or with only 'local' attn_layers.")
    generator = torch.Generator(device=like.device).manual_seed(seed)
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def rotations_shape(vectors, factors: list[int], num_hashes: int) -> tuple:
    """(heads, head_dim, hashes, rotations): half a rotation per bucket (a vector and its negation)."""
    return vectors.shape[1], vectors.shape[-1], num_hashes, sum(factors) // 2


def hash_buckets(vectors, num_buckets, num_hashes: int, attention_mask, seed, extra_bucket: bool = False):
    """(batch, heads, seq, head_dim) -> the bucket of every position in every hashing round, numbered so that each
    round has its own range: (batch, heads, num_hashes * seq). Padding positions get a bucket of their own."""
    factors = bucket_factors(num_buckets)
    rotations = random_rotations(rotations_shape(vectors, factors, num_hashes), vectors, seed)
    rotated = torch.einsum("bmtd,mdhr->bmhtr", vectors.detach(), rotations)  # (batch, heads, hashes, seq, rot)
    buckets, start, scale = 0, 0, 1
    for factor in factors:  # a factorised count: one argmax per factor, combined like digits
        part = rotated[..., start:start + factor // 2]
        buckets = buckets + scale * torch.cat([part, -part], dim=-1).argmax(dim=-1)
        start, scale = start + factor // 2, scale * factor
    total = scale
    # recorded graphs always keep a bucket for padding: one more per round, which leaves the sorted order the same
    if attention_mask is not None and (capturing() or not bool(attention_mask.bool().all())):
        total += 1
        keep = attention_mask.bool()[:, None, None, :].expand(buckets.shape)
        buckets = torch.where(keep, buckets, torch.full_like(buckets, total - 1))
    elif extra_bucket:
        total += 1
    offsets = (torch.arange(num_hashes, device=vectors.device) * total).view(1, 1, -1, 1)
    return (buckets + offsets).flatten(2, 3)


def attention_keep(query_positions, key_positions, attention_mask, scores_shape, causal: bool):
    """Which (query, key) pairs may attend, from the sequence positions of queries and keys: the key is no padding
    and, when `causal`, not after the query. None when every pair may."""
    keep = None
    if attention_mask is not None:
        mask = attention_mask.bool()
        mask = mask.view(mask.shape[0], *([1] * (key_positions.dim() - 2)), mask.shape[-1])
        keep = mask.expand(*key_positions.shape[:-1], mask.shape[-1]).gather(-1, key_positions)
        keep = keep.unsqueeze(-2).expand(scores_shape)
    if causal:
        later = query_positions.unsqueeze(-1) >= key_positions.unsqueeze(-2)
        keep = later if keep is None else keep & later
    return keep


def softmax_attend(query, key, value, keep, own_position, dropout: float, training: bool):
    """Scores masked where `keep` is false (and, more softly, where `own_position` is true), softmax, dropout,
    weighted values -> (values, log of the softmax normaliser, attention weights)."""
    scores = torch.matmul(query, key.transpose(-1, -2))
    if keep is not None:
        scores = torch.where(keep, scores, _MASKED.get(scores.dtype, -1e9))
    if own_position is not None:
        scores = torch.where(own_position, _OWN_POSITION.get(scores.dtype, -1e5), scores)
    logits = torch.logsumexp(scores, dim=-1, keepdim=True)
    probs = F.dropout(torch.exp(scores - logits), p=dropout, training=training)
    return torch.matmul(probs, value), logits, probs


def combine_rounds(out, logits, num_hashes: int, seq: int):
    """The hashing rounds' results weighted by their softmax normalisers: (batch, heads, num_hashes * seq, d) ->
    (batch, heads, seq, d)."""
    if num_hashes == 1:
        return out
    batch, heads = out.shape[:2]
    out = out.reshape(batch, heads, num_hashes, seq, -1)
    logits = logits.reshape(batch, heads, num_hashes, seq, 1)
    return (out * torch.exp(logits - torch.logsumexp(logits, dim=2, keepdim=True))).sum(dim=2)


class _HeadsMixin:
    def _heads(self, x):
        """(batch, seq, heads * d) -> (batch, heads, seq, d)."""
        return x.view(*x.shape[:2], self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    @staticmethod
    def _merge(x):
        """(batch, heads, seq, d) -> (batch, seq, heads * d)."""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)

    def _configure(self, config, layer_idx, prefix: str):
        """Read the settings of the `prefix` ("lsh" or "local") attention -> the width of its projections."""
        self.layer_idx, self.is_decoder = layer_idx, config.is_decoder
        self.num_attention_heads, self.attention_head_size = config.num_attention_heads, config.attention_head_size
        self.hidden_size, self.pad_token_id = config.hidden_size, config.pad_token_id
        self.all_head_size = config.num_attention_heads * config.attention_head_size
        self.chunk_length = getattr(config, f"{prefix}_attn_chunk_length")
        self.num_chunks_before = getattr(config, f"{prefix}_num_chunks_before")
        self.num_chunks_after = getattr(config, f"{prefix}_num_chunks_after")
        self.dropout = getattr(config, f"{prefix}_attention_probs_dropout_prob")
        return self.all_head_size

    def _neighbours(self, x):
        return with_neighbour_chunks(x, self.num_chunks_before, self.num_chunks_after)


class LSHSelfAttention(_HeadsMixin, nn.Module):
    """Shared query/key projection `query_key` and `value`; attention within chunks of bucket-sorted positions."""

    def __init__(self, config, layer_idx: int = 0):
        super().__init__()
        self.config = config  # num_buckets=None is resolved on the first long input and written back
        width = self._configure(config, layer_idx, "lsh")
        self.num_hashes, self.num_buckets, self.hash_seed = config.num_hashes, config.num_buckets, config.hash_seed
        self.max_position_embeddings = config.max_position_embeddings
        self.query_key = nn.Linear(config.hidden_size, width, bias=False)
        self.value = nn.Linear(config.hidden_size, width, bias=False)

    def forward(self, hidden_states, attention_mask=None, num_hashes=None, buckets=None, past_buckets_states=None,
                use_cache=False, output_attentions=False, **kwargs):
        """-> (output (batch, seq, heads * d), attention weights or (), buckets (batch, heads, hashes, seq) or
        None). `buckets` from an earlier pass over the same input skip the hashing."""
        num_hashes = num_hashes if num_hashes is not None else self.num_hashes
        cache = past_buckets_states
        if cache is not None and len(cache) > self.layer_idx:
            return self._cached_step(hidden_states, attention_mask, num_hashes, cache, output_attentions)
        batch, seq = hidden_states.shape[:2]
        query_key = self._heads(self.query_key(hidden_states))  # (batch, heads, seq, d)
        value = self._heads(self.value(hidden_states))
        if seq <= self.chunk_length:  # one chunk: every position sees every other
            positions = torch.arange(seq, device=value.device).expand(batch, self.num_attention_heads, seq)
            out, _, probs = self._attend(query_key, query_key, value, positions, positions, attention_mask, False)
            return self._merge(out), probs if output_attentions else (), None
        if self.num_buckets is None:
            self._set_num_buckets(seq)
        if buckets is None:
            buckets = hash_buckets(query_key, self.num_buckets, num_hashes, attention_mask, self.hash_seed)
        else:
            if self.hash_seed is None:  # draw the rotations anyway: a replayed pass uses the same random numbers
                random_rotations(rotations_shape(value, bucket_factors(self.num_buckets), num_hashes), value, None)
            buckets = buckets.reshape(batch, self.num_attention_heads, num_hashes * seq)
        with torch.no_grad():
            order = stable_argsort(buckets)  # (batch, heads, hashes * seq)
            undo = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1], device=order.device)
                                                    .expand(order.shape))
        positions = order % seq
        rows = positions.unsqueeze(-1).expand(-1, -1, -1, self.attention_head_size)
        sorted_qk, sorted_value = (split_chunks(x.repeat(1, 1, num_hashes, 1).gather(2, rows), self.chunk_length)
                                   for x in (query_key, value))  # (batch, heads, chunks, chunk_length, d)
        out, logits, probs = self._attend(sorted_qk, sorted_qk, sorted_value, positions, positions, attention_mask,
                                          True)
        out = out.gather(2, undo.unsqueeze(-1).expand(out.shape))  # back to (hash round, position) order
        out = combine_rounds(out, logits.gather(2, undo), num_hashes, seq)
        return (self._merge(out), probs if output_attentions else (),
                buckets.view(batch, self.num_attention_heads, num_hashes, -1))

    def _attend(self, query, key, value, query_positions, key_positions, attention_mask, chunked: bool):
        """Attention of `query` to the length-normalised `key`, positions masked as the config asks."""
        key = key * torch.rsqrt(key.pow(2).mean(-1, keepdim=True) + 1e-6) / math.sqrt(self.attention_head_size)
        if chunked:
            key, value = self._neighbours(key), self._neighbours(value)
            query_positions = split_chunks(query_positions, self.chunk_length)
            key_positions = self._neighbours(query_positions)
        scores_shape = (*query.shape[:-1], key.shape[-2])
        keep = attention_keep(query_positions, key_positions, attention_mask, scores_shape, self.is_decoder)
        own = query_positions.unsqueeze(-1) == key_positions.unsqueeze(-2)
        out, logits, probs = softmax_attend(query, key, value, keep, own, self.dropout, self.training)
        if chunked:  # (batch, heads, chunks, chunk_length, ...) -> (batch, heads, hashes * seq, ...)
            out, logits = out.flatten(2, 3), logits.flatten(2, 3).squeeze(-1)
        return out, logits, probs

    def _set_num_buckets(self, seq: int):
        """About 2 * seq / chunk_length buckets (a power of two), factorised in two when that count is large."""
        power = (2 * (seq // self.chunk_length)).bit_length() - 1
        num_buckets = 2 ** power
        limit = 2 * max(int((self.max_position_embeddings // self.chunk_length) ** 0.5), self.chunk_length)
        if num_buckets > limit:
            num_buckets = [2 ** (power // 2), 2 ** (power - power // 2)]
        logger.warning("config.num_buckets is not set; setting it to %s.", num_buckets)
        self.config.num_buckets = self.num_buckets = num_buckets

    def _cached_step(self, hidden_states, attention_mask, num_hashes, cache, output_attentions):
        """One new token against the cached hidden states: all of them while no buckets are cached, else those of
        the chunks around the new token's place in each round's bucket order."""
        if hidden_states.shape[1] != 1:
            raise ValueError(f"With past_buckets_states, Reformer decodes one token at a time; got "
                             f"{hidden_states.shape[1]} tokens. Pass only the last token.")
        batch, heads = hidden_states.shape[0], self.num_attention_heads
        query = self._heads(self.query_key(hidden_states))  # (batch, heads, 1, d)
        past_buckets = cache.buckets_cache[self.layer_idx]
        states = torch.cat([cache.states_cache[self.layer_idx], hidden_states], dim=1)
        length = states.shape[1]
        if past_buckets.numel():
            key_positions, relevant, buckets = self._relevant_states(query, attention_mask, num_hashes, states,
                                                                     past_buckets)
            query_key, value = (self._per_head(relevant, proj).unflatten(2, (num_hashes, -1))
                                for proj in (self.query_key, self.value))  # (batch, heads, hashes, span, d)
            query = query.unsqueeze(2).expand(-1, -1, num_hashes, -1, -1)
            query_positions = torch.full((*key_positions.shape[:-1], 1), length - 1, device=states.device)
        else:
            query_key, value = self._heads(self.query_key(states)), self._heads(self.value(states))
            buckets = None
            if length >= self.chunk_length:
                buckets = hash_buckets(query_key, self.num_buckets, num_hashes, attention_mask, self.hash_seed)
            key_positions = torch.arange(length, device=states.device).expand(batch, heads, length)
            query_positions = torch.full((batch, heads, 1), length - 1, device=states.device)
        key = query_key * torch.rsqrt(query_key.pow(2).mean(-1, keepdim=True) + 1e-6) / math.sqrt(
            self.attention_head_size)
        own = query_positions.unsqueeze(-1) == key_positions.unsqueeze(-2)
        out, logits, probs = softmax_attend(query, key, value, None, own, self.dropout, self.training)
        if past_buckets.numel():  # (batch, heads, hashes, 1, d) -> (batch, heads, 1, d)
            out = combine_rounds(out.flatten(2, 3), logits.flatten(2, 3).squeeze(-1), num_hashes, 1)
        if buckets is not None:
            buckets = buckets.view(batch, heads, num_hashes, -1)
        return self._merge(out), probs if output_attentions else (), buckets

    def _relevant_states(self, query, attention_mask, num_hashes, states, past_buckets):
        """-> (positions (batch, heads, hashes, span), their states (batch, heads, hashes * span, hidden), the new
        token's buckets): the chunks around the new token in each round's bucket order."""
        batch, length, width = states.shape
        total = reduce(mul, bucket_factors(self.num_buckets))
        extra = bool(past_buckets.max() > num_hashes * total - 1)  # the cached buckets include a padding bucket
        new_buckets = hash_buckets(query, self.num_buckets, num_hashes, attention_mask, self.hash_seed, extra)
        order = stable_argsort(torch.cat([past_buckets, new_buckets.unsqueeze(-1)], dim=-1))  # (b, h, hashes, L)
        slot = (order == length - 1).to(torch.int8).argmax(dim=-1, keepdim=True)  # where the new token sorts to
        span = self.chunk_length * (1 + self.num_chunks_before + self.num_chunks_after)
        start = (slot // self.chunk_length - self.num_chunks_before) * self.chunk_length
        positions = order.gather(-1, (start + torch.arange(span, device=order.device)) % length)
        rows = positions.flatten(2).unsqueeze(-1).expand(-1, -1, -1, width)
        relevant = states.unsqueeze(1).expand(-1, self.num_attention_heads, -1, -1).gather(2, rows)
        return positions, relevant, new_buckets

    def _per_head(self, states, proj):
        """(batch, heads, n, hidden) -> (batch, heads, n, d): each head's slice of `proj` on its own rows."""
        weight = proj.weight.view(self.num_attention_heads, self.attention_head_size, self.hidden_size)
        return torch.einsum("balh,arh->balr", states, weight)


class LocalSelfAttention(_HeadsMixin, nn.Module):
    """`query`, `key`, `value` projections; each chunk attends to itself and its neighbouring chunks."""

    def __init__(self, config, layer_idx: int = 0):
        super().__init__()
        width = self._configure(config, layer_idx, "local")
        self.query = nn.Linear(config.hidden_size, width, bias=False)
        self.key = nn.Linear(config.hidden_size, width, bias=False)
        self.value = nn.Linear(config.hidden_size, width, bias=False)

    def forward(self, hidden_states, attention_mask=None, past_buckets_states=None, use_cache=False,
                output_attentions=False, **kwargs):
        """-> (output (batch, seq, heads * d), attention weights or (), None)."""
        batch, seq = hidden_states.shape[:2]
        cache = past_buckets_states
        cached = cache is not None and len(cache) > self.layer_idx
        states = hidden_states
        if cached:  # the new token sees the last chunks of the cached states
            past = cache.states_cache[self.layer_idx]
            start = (past.shape[1] // self.chunk_length - self.num_chunks_before) * self.chunk_length
            states = torch.cat([past[:, start:], hidden_states], dim=1)
        query, value = self._heads(self.query(hidden_states)), self._heads(self.value(states))
        key = self._heads(self.key(states)) / math.sqrt(self.attention_head_size)
        positions = torch.arange(seq, device=value.device).expand(batch, self.num_attention_heads, seq)
        chunked = seq > self.chunk_length
        query_positions = key_positions = positions
        if chunked:  # (batch, heads, chunks, chunk_length, ...)
            query, key, value = (split_chunks(x, self.chunk_length) for x in (query, key, value))
            key, value = self._neighbours(key), self._neighbours(value)
            query_positions = split_chunks(positions, self.chunk_length)
            key_positions = self._neighbours(query_positions)
        keep = None
        if not cached:
            keep = attention_keep(query_positions, key_positions, attention_mask,
                                  (*query.shape[:-1], key.shape[-2]), self.is_decoder)
        out, _, probs = softmax_attend(query, key, value, keep, None, self.dropout, self.training)
        if chunked:
            out = out.flatten(2, 3)
        return self._merge(out), probs if output_attentions else (), None
