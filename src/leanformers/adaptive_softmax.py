"""Adaptive input embeddings and the adaptive log-softmax (Baevski & Auli; Grave et al.). Functions, not modules.

The vocabulary is cut into clusters at `cutoffs` (`[c1, c2, ...]`, then the vocabulary size): the first cluster is
the head's shortlist `[0, c1)`, each later cluster `[c_i, c_i+1)` a tail. The head scores the shortlist plus one
logit per tail cluster (in cluster order, after the shortlist); a token of tail `i` has the log-probability of its
cluster in the head plus its own within the tail. Callers give the logit functions, so any weight layout fits:

    head(hidden) -> (rows, shortlist + tails) logits          tails[i](hidden) -> (rows, size of tail i) logits

Used by Transformer-XL (projected clusters, `models/transfo_xl.py`); the same functions serve an
`nn.AdaptiveLogSoftmaxWithLoss`-style head (`head`, `tail[i]` modules) as `adaptive_log_probs(h, m.head, tails)`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

Logits = Callable[[torch.Tensor], torch.Tensor]


def cluster_bounds(cutoffs: Sequence[int], vocab_size: int) -> list[tuple[int, int]]:
    """[(start, end)] of every cluster: the shortlist first, then each tail."""
    edges = [0, *cutoffs, vocab_size]
    return list(zip(edges[:-1], edges[1:]))


def adaptive_log_probs(hidden: torch.Tensor, head: Logits, tails: Sequence[Logits]) -> torch.Tensor:
    """(rows, dim) hidden -> (rows, vocab) log-probabilities over the whole vocabulary."""
    head_logprob = F.log_softmax(head(hidden), dim=-1)
    shortlist = head_logprob.shape[-1] - len(tails)
    parts = [head_logprob[:, :shortlist]]
    for i, tail in enumerate(tails):
        parts.append(head_logprob[:, shortlist + i, None] + F.log_softmax(tail(hidden), dim=-1))
    return torch.cat(parts, dim=-1)


def adaptive_nll(hidden: torch.Tensor, labels: torch.Tensor, head: Logits, tails: Sequence[Logits],
                 cutoffs: Sequence[int], vocab_size: int) -> torch.Tensor:
    """(rows,) negative log-likelihood of each row's label, in row order; 0 where the label is outside the
    vocabulary (the ignored label -100).

    A tail's logits are computed only for the rows whose label falls in it."""
    head_logprob = F.log_softmax(head(hidden), dim=-1)
    shortlist = head_logprob.shape[-1] - len(tails)
    nll = hidden.new_zeros(labels.shape[0])
    for i, (start, end) in enumerate(cluster_bounds(cutoffs, vocab_size)):
        rows = ((labels >= start) & (labels < end)).nonzero().squeeze(-1)
        if rows.numel() == 0:
            continue
        target = (labels[rows] - start)[:, None]
        if i == 0:
            logprob = head_logprob[rows].gather(1, target).squeeze(1)
        else:
            tail_logprob = F.log_softmax(tails[i - 1](hidden[rows]), dim=-1)
            logprob = head_logprob[rows, shortlist + i - 1] + tail_logprob.gather(1, target).squeeze(1)
        nll = nll.index_copy(0, rows, -logprob)
    return nll


def adaptive_embed(ids: torch.Tensor, cutoffs: Sequence[int], vocab_size: int, lookups: Sequence[Logits],
                   width: int, dtype: torch.dtype) -> torch.Tensor:
    """ids (any shape) -> (*shape, width): each id embedded by its cluster's `lookups[i](ids - start)`, which
    returns (n, width) vectors (an embedding lookup and its projection)."""
    flat = ids.reshape(-1)
    out = torch.zeros(flat.shape[0], width, dtype=dtype, device=ids.device)
    for (start, end), lookup in zip(cluster_bounds(cutoffs, vocab_size), lookups):
        rows = ((flat >= start) & (flat < end)).nonzero().squeeze(-1)
        if rows.numel():
            out = out.index_copy(0, rows, lookup(flat[rows] - start).to(dtype))
    return out.view(*ids.shape, width)


__all__ = ["cluster_bounds", "adaptive_log_probs", "adaptive_nll", "adaptive_embed"]
