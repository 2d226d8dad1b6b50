"""Batch-invariant kernels: each row of a batch is computed exactly as it would be alone (bitwise, CPU float32).

Matrix kernels pick their algorithm by the number of rows (a matrix-vector product for one row, blocked matrix
products for more), so the same row gives slightly different floats alone and in a batch, and greedy decoding can
take another token. Inside `batch_invariant()` every call is put into one canonical form before it runs:

- a product with a weight (`F.linear`, and the `weight @ x.T` form of `products.linear` for a few rows) runs as
  `F.linear` over a multiple of `ROW_MULTIPLE` rows, zero rows appended to fill the last group. On the AMD
  processors measured, MKL works on groups of rows and computes a row of a full group with the same reduction
  order whatever the other rows are, but a single row (a matrix-vector product) or a part-filled last group takes
  other paths. On Intel's (a Xeon with AVX-512) the order also moves with the number of rows of a call, whatever
  multiple of 4-64 it is, so there each call takes exactly one group (`CALL_ROWS`); `tests/serving` checks both
  on every run;
- attention (`F.scaled_dot_product_attention`) runs one batch row at a time, on that row's real keys and queries
  only (the padding columns and rows a mask hides are cut away), with no mask when what remains is fully visible;
  causal attention of several queries runs in blocks of QUERY_BLOCK queries at fixed positions (0..63, 64..127,
  ...), each over the keys up to its last query, so a prompt prefilled in chunks of a multiple of QUERY_BLOCK
  tokens makes the same calls as the prompt prefilled at once.

Element-wise ops and per-row norms are row-independent already. The cost is the matrix product in place of the
matrix-vector product for a single row (the padded rows), on Intel a product call per 8 rows, and one attention
call per row (and per block of a long prompt's queries).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .. import products

ROW_MULTIPLE = 8 if products.INTEL else 4  # rows of a full group of the CPU matrix kernels
# rows of one product call: on Intel exactly one group (a decoding batch of up to 8 is one call), elsewhere any
# number of whole groups
CALL_ROWS = ROW_MULTIPLE if products.INTEL else None
QUERY_BLOCK = 64  # queries per call of causal attention, at positions that are multiples of it

__all__ = ["batch_invariant", "BatchInvariantMode", "ROW_MULTIPLE", "QUERY_BLOCK"]


def _padded_linear(x, weight, bias=None):
    """F.linear over the rows of x, run on a multiple of ROW_MULTIPLE rows."""
    rows = x.numel() // max(x.shape[-1], 1)
    flat = x.reshape(rows, x.shape[-1])
    missing = -rows % ROW_MULTIPLE or (ROW_MULTIPLE if rows == 0 else 0)
    if missing:
        flat = torch.cat([flat, flat.new_zeros(missing, flat.shape[1])])
    parts = [F.linear(group, weight, bias) for group in flat.split(CALL_ROWS or len(flat))]
    out = (torch.cat(parts) if len(parts) > 1 else parts[0])[:rows]
    return out.reshape(*x.shape[:-1], weight.shape[0])


def _is_row_columns(columns) -> bool:
    """True for the `x.T` operand of `weight @ x.T` (products.linear): the transpose of row-major rows."""
    return columns.dim() == 2 and columns.stride(0) == 1 and columns.stride(1) != 1


def _keep_mask(mask, dtype):
    """Boolean view of an SDPA mask (True = attend); additive float masks hide with very negative values."""
    if mask.dtype == torch.bool:
        return mask
    return mask > torch.finfo(mask.dtype).min / 2


def _selector(flags):
    """A slice when the True entries form one run (no copy), else an index tensor."""
    where = flags.nonzero().flatten()
    if where.numel() == 0:
        return None
    first, last = int(where[0]), int(where[-1])
    return slice(first, last + 1) if last - first + 1 == where.numel() else where


def _causal_blocks(q, k, v, scale, enable_gqa):
    """Causal attention of one batch row whose queries are the last q.shape[2] of its k.shape[2] positions, run in
    blocks of queries at positions [j * QUERY_BLOCK, (j + 1) * QUERY_BLOCK), each over the keys up to its end."""
    queries, keys = q.shape[2], k.shape[2]
    first, start, outs = keys - queries, keys - queries, []
    while start < keys:
        end = min(keys, (start // QUERY_BLOCK + 1) * QUERY_BLOCK)
        block, key, value = q[:, :, start - first:end - first], k[:, :, :end], v[:, :, :end]
        if end - start == 1:  # one query sees every key: no mask
            out = F.scaled_dot_product_attention(block, key, value, scale=scale, enable_gqa=enable_gqa)
        elif start == 0:
            out = F.scaled_dot_product_attention(block, key, value, is_causal=True, scale=scale, enable_gqa=enable_gqa)
        else:
            keep = torch.ones(end - start, end, dtype=torch.bool, device=q.device).tril(diagonal=start)
            out = F.scaled_dot_product_attention(block, key, value, attn_mask=keep, scale=scale, enable_gqa=enable_gqa)
        outs.append(out)
        start = end
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def _is_causal_pattern(keep) -> bool:
    """True when (..., queries, keys) `keep` lets query i see keys 0..keys - queries + i, for several queries."""
    queries, keys = keep.shape[-2], keep.shape[-1]
    if queries < 2 or queries > keys:
        return False
    causal = torch.ones(queries, keys, dtype=torch.bool, device=keep.device).tril(diagonal=keys - queries)
    return bool((keep == causal).all())


def _row_attention(q, k, v, keep, scale, enable_gqa):
    """SDPA for one batch row (tensors with batch 1) in canonical form -> (output, query selector)."""
    query_len = q.shape[2]
    if keep is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=enable_gqa), slice(None)
    per_query = keep.any(0)                                            # (mask queries, keys)
    key_sel = _selector(per_query.any(0))
    query_sel = _selector(per_query.any(1)) if per_query.shape[0] == query_len else slice(None)
    if key_sel is None or query_sel is None:
        return None, None
    keep = keep[:, query_sel] if per_query.shape[0] == query_len else keep
    keep = keep[..., key_sel]
    q, k, v = q[:, :, query_sel], k[:, :, key_sel], v[:, :, key_sel]
    if bool(keep.all()):
        keep = None
    elif keep.shape[-2] == q.shape[2] and _is_causal_pattern(keep):
        return _causal_blocks(q, k, v, scale, enable_gqa), query_sel
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if keep is None else keep[None], scale=scale,
                                         enable_gqa=enable_gqa)
    return out, query_sel


def _invariant_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if dropout_p:
        raise ValueError("batch_invariant decoding needs dropout_p=0 in attention; call model.eval() first.")
    if enable_gqa and q.shape[1] != k.shape[1]:  # one form for grouped queries: keys and values repeated per head
        groups = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    enable_gqa = False
    batch = q.shape[0]
    if attn_mask is None and is_causal and q.shape[2] == k.shape[2]:  # SDPA's own causal mask: each row alone
        if batch == 1:
            return _causal_blocks(q, k, v, scale, enable_gqa)
        return torch.cat([_causal_blocks(q[b:b + 1], k[b:b + 1], v[b:b + 1], scale, enable_gqa)
                          for b in range(batch)])
    if attn_mask is None and batch == 1:
        return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    if attn_mask is None and is_causal:  # several rows, SDPA's causal mask (top-left when queries < keys)
        return torch.cat([F.scaled_dot_product_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], is_causal=is_causal,
                                                         scale=scale, enable_gqa=enable_gqa) for b in range(batch)])
    keep = None if attn_mask is None else _keep_mask(attn_mask, q.dtype)
    out = q.new_zeros(*q.shape[:-1], v.shape[-1])                      # (batch, heads, queries, value dim)
    for b in range(batch):
        row_keep = None if keep is None else keep[b if keep.shape[0] > 1 else 0]
        if row_keep is not None and row_keep.dim() == 2:
            row_keep = row_keep[None]
        result, query_sel = _row_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], row_keep, scale, enable_gqa)
        if result is not None:
            out[b:b + 1, :, query_sel] = result
    return out


class BatchInvariantMode(TorchFunctionMode):
    """Runs linear layers and attention in their batch-invariant canonical forms (see the module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            return _padded_linear(*args, **kwargs)
        if func is F.scaled_dot_product_attention:
            return _invariant_attention(*args, **kwargs)
        if func in (torch.mm, torch.Tensor.mm) and not kwargs and len(args) == 2 and _is_row_columns(args[1]):
            weight, columns = args
            return _padded_linear(columns.t(), weight).t()
        if func is torch.addmm and not kwargs and len(args) == 3 and _is_row_columns(args[2]):
            bias, weight, columns = args
            if bias.dim() == 2 and bias.shape[1] == 1:
                return _padded_linear(columns.t(), weight, bias[:, 0]).t()
        return func(*args, **kwargs)


@contextlib.contextmanager
def batch_invariant(enabled: bool = True):
    """Context in which model forward passes are batch-invariant (a no-op when `enabled` is False)."""
    if not enabled:
        yield
        return
    with BatchInvariantMode():
        yield
