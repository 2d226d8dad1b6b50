"""Sliding-window ("local") attention with a few global tokens, in memory linear in the sequence length.

Queries are cut into blocks of `w` positions (`w` = one side of the window); block c sees the 3 * w keys from
c * w - w to c * w + 2 * w, an overlapping strided view of the keys, so the scores of a block are (w, 3 * w) and no
(seq, seq) matrix is ever built. Query r of a block attends to keys r .. r + 2 * w of its block's view: the w keys
before it, itself and the w keys after it. Global tokens are attended by every query through extra key columns,
and attend to the whole sequence themselves (`global_query_attention`).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .layers import capturing


def global_slots(is_global: torch.Tensor, every_position: bool = False):
    """(batch, seq) bool -> (positions, valid), both (batch, max global count): the global positions of each row in
    order, then filler positions whose `valid` is False (rows with fewer global tokens than the longest).
    `every_position` gives one slot per position instead (seq slots): a count that does not depend on the values,
    for graphs recorded by trace or export, at the cost of global attention over the whole sequence."""
    counts = is_global.sum(dim=1)
    most = is_global.shape[1] if every_position else int(counts.max())
    positions = torch.argsort(is_global.logical_not().to(torch.uint8), dim=1, stable=True)[:, :most]
    valid = torch.arange(most, device=is_global.device) < counts[:, None]
    return positions, valid


def gather_positions(x: torch.Tensor, positions: torch.Tensor, dim: int) -> torch.Tensor:
    """The rows of x at `positions` (batch, count) along the sequence dimension `dim` (1 or 2)."""
    index = positions.view(*positions.shape[:1], *([1] * (dim - 1)), positions.shape[1], 1)
    return x.gather(dim, index.expand(*x.shape[:dim], positions.shape[1], x.shape[-1]))


def scatter_positions(x: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor):
    """x (batch, seq, width) with the valid `rows` (batch, count, width) written at their `positions` (distinct in a
    row); filler slots write back what x holds, so no shape depends on how many rows are valid."""
    rows = torch.where(valid[..., None], rows, gather_positions(x, positions, 1))
    return x.scatter(1, positions[..., None].expand(*positions.shape, x.shape[-1]), rows)


def window_blocks(x: torch.Tensor, w: int) -> torch.Tensor:
    """(batch, heads, seq, dim), seq a multiple of w -> (batch, heads, seq / w, 3 * w, dim): block c holds
    positions c * w - w .. c * w + 2 * w - 1, zeros outside the sequence (overlapping windows: a view of one padded
    copy, through unfold so that a traced graph follows the length)."""
    return F.pad(x, (0, 0, w, w)).unfold(2, 3 * w, w).transpose(-1, -2)


def blocked_keys(excluded: torch.Tensor, w: int) -> torch.Tensor:
    """(batch, seq) bool of keys no local query may see -> (batch, 1, seq / w, w, 3 * w) bool, True where query r
    of a block may not attend to column t of its block's keys: outside the sequence, excluded, or outside the
    window (t < r or t > r + 2 * w)."""
    per_block = F.pad(excluded, (w, w), value=True).unfold(1, 3 * w, w)  # (batch, seq / w, 3 * w)
    row = torch.arange(w, device=excluded.device)[:, None]
    column = torch.arange(3 * w, device=excluded.device)[None, :]
    outside = (column < row) | (column > row + 2 * w)
    return per_block[:, None, :, None, :] | outside


def band_from_blocks(block_weights: torch.Tensor, w: int) -> torch.Tensor:
    """(batch, heads, seq, 3 * w) weights in block layout -> (batch, heads, seq, 2 * w + 1): for each query, its
    weights to the keys at offsets -w .. +w (the diagonal band of each block, read through a strided view)."""
    batch, heads, length, _ = block_weights.shape
    blocks = block_weights.contiguous()
    band = blocks.as_strided((batch, heads, length // w, w, 2 * w + 1),
                             (heads * length * 3 * w, length * 3 * w, w * 3 * w, 3 * w + 1, 1),
                             blocks.storage_offset())
    return band.reshape(batch, heads, length, 2 * w + 1)


def sliding_window_attention(q, k, v, w: int, excluded, global_kv=None, dropout_p: float = 0.0,
                             want_weights: bool = False):
    """Local attention of every query to the w keys on each side (q already scaled), plus the global keys.

    q, k, v: (batch, heads, seq, head_dim); excluded: (batch, seq) bool, tokens that are neither attended locally
    nor given local weights, and whose local output is zero (padding and global tokens); global_kv: None or (keys,
    values, valid) of the global tokens, (batch, heads, count, head_dim) twice and (batch, count). Returns the output
    (batch, heads, seq, head_dim) and, when asked, the weights (batch, heads, seq, count + 2 * w + 1): global columns
    first, then the band from offset -w to +w. Without weights the blocks go through SDPA's fused kernel.
    """
    length = q.shape[2]
    pad = (length + w - 1) // w * w - length  # the blocks need a multiple of w; padded queries are dropped, padded
    # keys excluded (written so that export sees a multiple of w)
    if capturing() or pad:  # a recorded graph pads (by 0 if so) for any length
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        excluded = F.pad(excluded, (0, pad), value=True)
    if not want_weights:
        return _fused_window_attention(q, k, v, w, excluded, global_kv, dropout_p)[:, :, :length], None
    out, weights = _eager_window_attention(q, k, v, w, excluded, global_kv, dropout_p)
    return out[:, :, :length], weights[:, :, :length]


def _eager_window_attention(q, k, v, w: int, excluded, global_kv, dropout_p: float):
    """sliding_window_attention on a multiple of w, with its weights."""
    batch, heads, length, dim = q.shape
    lowest = torch.finfo(q.dtype).min
    scores = q.view(batch, heads, -1, w, dim) @ window_blocks(k, w).transpose(-1, -2)  # (b, h, blocks, w, 3w)
    scores = scores.masked_fill_(blocked_keys(excluded, w), lowest).view(batch, heads, length, 3 * w)
    count = 0
    if global_kv is not None:
        global_keys, global_values, valid = global_kv
        count = global_keys.shape[2]
        global_scores = (q @ global_keys.transpose(-1, -2)).masked_fill_(~valid[:, None, None, :], lowest)
        scores = torch.cat([global_scores, scores], dim=-1)  # (batch, heads, seq, count + 3w)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    weights = weights.masked_fill(excluded[:, None, :, None], 0.0)  # padding and global rows: no local weights
    weights = F.dropout(weights, p=dropout_p, training=dropout_p > 0)
    local = weights[..., count:].reshape(batch, heads, -1, w, 3 * w)
    out = (local @ window_blocks(v, w)).view(batch, heads, length, dim)
    band = band_from_blocks(weights[..., count:], w)
    if count:
        out = out + weights[..., :count] @ global_values
        band = torch.cat([weights[..., :count], band], dim=-1)
    return out, band


def _fused_window_attention(q, k, v, w: int, excluded, global_kv, dropout_p: float):
    """sliding_window_attention on a multiple of w through SDPA: each block of w queries (batch * blocks rows)
    attends to its 3 * w keys (and the global keys) under an additive mask."""
    batch, heads, length, dim = q.shape
    blocks, lowest = length // w, torch.finfo(q.dtype).min
    keys, values = window_blocks(k, w), window_blocks(v, w)  # (batch, heads, blocks, 3w, head_dim)
    blocked = blocked_keys(excluded, w)  # (batch, 1, blocks, w, 3w)
    if global_kv is not None:
        global_keys, global_values, valid = global_kv
        keys, values = (torch.cat([g[:, :, None].expand(-1, -1, blocks, -1, -1), x], dim=3)
                        for g, x in ((global_keys, keys), (global_values, values)))
        not_valid = ~valid[:, None, None, None, :].expand(-1, -1, blocks, w, -1)
        blocked = torch.cat([not_valid, blocked], dim=-1)
    size = keys.shape[3]
    bias = torch.zeros(blocked.shape, dtype=q.dtype, device=q.device).masked_fill_(blocked, lowest)

    def per_block(x, rows):  # (batch, heads, blocks, rows, d) -> (batch * blocks, heads, rows, d)
        return x.transpose(1, 2).reshape(batch * blocks, x.shape[1], rows, x.shape[-1])

    out = F.scaled_dot_product_attention(per_block(q.view(batch, heads, blocks, w, dim), w), per_block(keys, size),
                                         per_block(values, size), attn_mask=per_block(bias, w),
                                         dropout_p=dropout_p, scale=1.0)
    out = out.view(batch, blocks, heads, w, dim).transpose(1, 2).reshape(batch, heads, length, dim)
    return out.masked_fill(excluded[:, None, :, None], 0.0)  # padding and global rows: no local output


def global_query_attention(q, k, v, valid, masked, dropout_p: float = 0.0):
    """Global tokens attending to the whole sequence: q (batch, heads, count, head_dim), already scaled; k, v
    (batch, heads, seq, head_dim); valid (batch, count) marks real global tokens; masked (batch, seq) the padding.
    Returns the output (batch, heads, count, head_dim) and the weights (batch, heads, count, seq); filler rows
    (not valid) weigh every key equally and are meant to be dropped."""
    lowest = torch.finfo(q.dtype).min
    scores = (q @ k.transpose(-1, -2)).masked_fill_(~valid[:, None, :, None] | masked[:, None, None, :], lowest)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    weights = F.dropout(weights, p=dropout_p, training=dropout_p > 0)
    return weights @ v, weights
