"""Shared math for every architecture: attention, masks, activations. Functions, not modules."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import step_operators
from .products import few_rows_linear, linear  # noqa: F401 - the models import them from here


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
        if not capturing() and bool(attention_mask.all()):
            return None
        attention_mask = attention_mask[:, None, None, :]
    elif attention_mask.dim() == 3:
        attention_mask = attention_mask[:, None, :, :]
    return additive(attention_mask, dtype)


def capturing() -> bool:
    """True while torch.jit.trace, torch.export or torch.compile records the model: a branch on tensor values
    would be frozen into the graph (or break it), so shortcuts that read values are skipped."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


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

    SDPA does the work (in a compiled CPU decoding step, step_operators' attention for the one new token); the
    explicit path runs only when the attention weights are wanted or a head mask is given, since SDPA exposes neither.
    """
    if not want_weights and head_mask is None:
        if _step_attention_wanted(q, dropout_p) and (mask is not None or not is_causal):
            return step_operators.step_attention(q, k, v, mask, scale), None
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


# ---------------------------------------------------------------------- losses shared by the task heads
def causal_lm_loss(logits, labels, num_items_in_batch=None, ignore_index: int = -100):
    """Next-token cross-entropy: position t predicts labels[t + 1]; computed in float32 like Transformers."""
    shifted = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    flat_logits = logits.float().reshape(-1, logits.shape[-1])
    flat_labels = shifted.reshape(-1).to(logits.device)
    if num_items_in_batch is None:
        return F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index)
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=ignore_index, reduction="sum")
    return total / (num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch)


def sequence_classification_loss(config, logits, labels):
    """MSE (regression), cross-entropy (single label) or BCE (multi-label), picked by `config.problem_type`.

    An unset problem_type is inferred and stored on the config, as Transformers does: one label -> regression,
    integer labels -> single-label classification, anything else -> multi-label.
    """
    num_labels = logits.shape[-1]
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(), labels.squeeze()) if num_labels == 1 else F.mse_loss(logits, labels)
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels)


def span_loss(start_logits, end_logits, start_positions, end_positions):
    """Mean of start and end cross-entropy for extractive QA; positions outside the sequence are ignored.

    None unless both position tensors are given.
    """
    if start_positions is None or end_positions is None:
        return None
    ignored = start_logits.shape[1]
    start_positions = start_positions.reshape(-1).clamp(0, ignored)  # (batch, 1) from some collators -> (batch,)
    end_positions = end_positions.reshape(-1).clamp(0, ignored)
    return (F.cross_entropy(start_logits, start_positions, ignore_index=ignored)
            + F.cross_entropy(end_logits, end_positions, ignore_index=ignored)) / 2


# ------------------------------------------------------------ decoders: causal masks, cached and grouped attention
def decoder_mask(attention_mask, query_len: int, past_len: int, sliding_window: int | None = None):
    """Mask for causal self-attention of `query_len` new tokens after `past_len` cached ones -> (mask, is_causal).

    `attention_mask` is the 0/1 padding mask over all `past_len + query_len` positions (or None); a 4-D mask is taken
    as given (its key axis cut to the keys held). When SDPA needs no mask (no padding, and one new token or an empty
    cache) the mask is None and `is_causal` says whether SDPA must apply causality itself; otherwise the mask is a
    boolean (batch or 1, 1, query, key) tensor, True = attend. Positions count cache slots, so `sliding_window`
    lets a token see itself and the `sliding_window - 1` slots before it, padding included, as Transformers does.
    """
    key_len = past_len + query_len
    if attention_mask is not None and attention_mask.dim() == 4:
        return attention_mask[..., :key_len], False
    pad = None
    if attention_mask is not None:
        if attention_mask.shape[-1] < key_len:
            raise ValueError(f"attention_mask covers {attention_mask.shape[-1]} positions but the model sees {key_len} "
                             f"({past_len} cached + {query_len} new); pass the mask of the whole sequence so far.")
        pad = attention_mask[:, :key_len]
        pad = None if not capturing() and bool(pad.all()) else pad.bool()
    windowed = sliding_window is not None and key_len > sliding_window
    if not windowed:
        if pad is None and query_len == 1:
            return None, False
        if pad is None and past_len == 0:
            return None, True  # SDPA's own causal mask (aligned top-left) is right when queries == keys
        if pad is not None and query_len == 1:
            return pad[:, None, None, :], False
    device = attention_mask.device if attention_mask is not None else None
    query_pos = torch.arange(past_len, key_len, device=device)[:, None]
    key_pos = torch.arange(key_len, device=device)[None, :]
    keep = key_pos <= query_pos
    if windowed:
        keep = keep & (key_pos > query_pos - sliding_window)
    keep = keep[None, None]
    return (keep & pad[:, None, None, :] if pad is not None else keep), False


def decoder_masks(attention_mask, query_len: int, past_len: int, windows=(None,), explicit: bool = False,
                  dtype=None, device=None) -> dict:
    """{sliding window: (mask, is_causal)} for each distinct window of a model's layers (None = full attention);
    with `explicit`, the float masks of the weights-returning path (see `additive_mask`)."""
    masks = {}
    for window in set(windows):
        mask, is_causal = decoder_mask(attention_mask, query_len, past_len, window)
        if explicit:
            mask, is_causal = additive_mask(mask, is_causal, query_len, past_len + query_len, dtype, device), False
        masks[window] = (mask, is_causal)
    return masks


def last_token_logits(logits, input_ids, pad_token_id):
    """(batch, ...) logits of each row's last non-padding token; rows may be padded on either side.

    Without `pad_token_id` only a single row can be classified; with inputs_embeds (no ids) the last position is used.
    """
    batch = logits.shape[0]
    if pad_token_id is None:
        if batch != 1:
            raise ValueError("Cannot classify a batch of several sequences without config.pad_token_id: set it to the "
                             "padding token id (e.g. model.config.pad_token_id = tokenizer.pad_token_id).")
        last = -1
    elif input_ids is not None:
        kept = (input_ids != pad_token_id).to(logits.device, torch.int32)
        last = (torch.arange(input_ids.shape[-1], device=logits.device, dtype=torch.int32) * kept).argmax(-1)
    else:
        last = -1
    return logits[torch.arange(batch, device=logits.device), last]


def check_position_limit(length: int, limit: int):
    """Models with a table of learned or fixed positions cannot read past its end."""
    if not torch.jit.is_tracing() and length > limit:  # traced, the size is a tensor; the check ran in eager
        raise ValueError(f"The sequence reaches position {length - 1} but the model has positions 0..{limit - 1} "
                         f"(max_position_embeddings={limit}); shorten the input or the generation.")


def classifier_dropout_prob(config) -> float:
    """Dropout before a token-classification layer: classifier_dropout, else hidden_dropout, else 0.1."""
    for name in ("classifier_dropout", "hidden_dropout"):
        if getattr(config, name, None) is not None:
            return getattr(config, name)
    return 0.1


def span_logits(logits):
    """(start, end) logits, each (batch, seq), of an extractive-QA head's (batch, seq, 2) output."""
    start, end = logits.split(1, dim=-1)
    return start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous()


def additive_mask(mask, is_causal: bool, query_len: int, key_len: int, dtype, device):
    """decoder_mask's result for the explicit (weights-returning) path: float, 0 = attend, dtype min = masked."""
    if mask is None:
        if not is_causal:
            return None
        mask = torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril(key_len - query_len)[None, None]
    if mask.dtype != torch.bool:
        return mask
    return torch.where(mask, torch.zeros((), dtype=dtype, device=mask.device), torch.finfo(dtype).min)


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(batch, kv_heads, seq, dim) -> (batch, kv_heads * groups, seq, dim), each key/value head repeated in place."""
    if groups == 1:
        return x
    batch, heads, seq, dim = x.shape
    return x[:, :, None].expand(batch, heads, groups, seq, dim).reshape(batch, heads * groups, seq, dim)


def grouped_attention(q, k, v, mask=None, is_causal: bool = False, scale: float | None = None,
                      dropout_p: float = 0.0, want_weights: bool = False, head_mask=None):
    """`attention` where queries have more heads than keys and values (grouped-query attention) -> (output, weights).

    A single new token needs no copy of the keys: the query heads of each group are stacked as that group's queries.
    """
    groups = q.shape[1] // k.shape[1]
    if groups == 1 or want_weights or head_mask is not None:
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        return attention(q, k, v, mask, dropout_p, want_weights, scale, head_mask, is_causal)
    batch, heads, query_len, dim = q.shape
    if mask is not None and mask.shape[1] == 1 and StepAttentionProducts.on and torch.compiler.is_exporting():
        return _stacked_group_attention(q, k, v, mask, scale), None
    if query_len == 1 and (mask is None or mask.shape[1] == 1):
        if _step_attention_wanted(q, dropout_p):
            return step_operators.step_attention(q, k, v, mask, scale), None
        q = q.reshape(batch, heads // groups, groups, dim)
        if _step_products_wanted(batch, dropout_p):
            out = _grouped_step_attention(q, k, v, mask, scale)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
        return out.reshape(batch, heads, 1, dim), None
    if mask is None:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                                             enable_gqa=True)
        return out, None
    return attention(q, repeat_kv(k, groups), repeat_kv(v, groups), mask, dropout_p, False, scale, None, False)


class StepAttentionProducts:
    """While on, compiled graphs take the decoding step's grouped attention as two products as well (measured with
    the server's former CPU step compiled in process: 25 -> 13 ms of a 32-row SmolLM2 step; on for the CUDA step,
    serving/compiled_step.py, unmeasured there), and an exported graph takes grouped attention of any number of new
    tokens that way (the server's CPU library, serving/exported_step.py, one graph for prompts and decoding steps
    alike). Off elsewhere: compiled generate() over its static cache ran slower with them (batch 8: 177 -> 157
    tokens/s)."""

    on = False  # read while torch.compile traces: a graph compiled with it on is only reused with it on

    def __enter__(self):
        self.before, StepAttentionProducts.on = StepAttentionProducts.on, True

    def __exit__(self, *exc):
        StepAttentionProducts.on = self.before


def _step_attention_wanted(q, dropout_p: float) -> bool:
    """Whether a compiled CPU decoding step attends its one new token per row through step_operators' operator
    (compiled with frozen weights, where the operator is loaded)."""
    # the step first: a TorchScript trace must not read the sizes (it warns that they become constants)
    return (step_operators.building_step() and q.shape[-2] == 1 and not dropout_p and q.dtype is torch.float32
            and q.is_cpu)


def _step_products_wanted(batch: int, dropout_p: float) -> bool:
    if dropout_p or torch.is_grad_enabled():
        return False
    if torch.compiler.is_compiling():  # checked first: a graph of dynamic batch size must not depend on it
        return StepAttentionProducts.on
    return batch >= 4 and not torch._C._is_torch_function_mode_enabled()  # batch_invariant must see SDPA


def _stacked_group_attention(q, k, v, mask, scale):
    """Grouped attention of (batch, heads, queries, dim) queries with a (batch or 1, 1, queries, keys) mask, each
    group's queries stacked as its key head's (queries * groups) queries: no copy of the keys for every query head,
    and no branch on the number of queries (an exported graph serves 1 and many alike)."""
    batch, heads, queries, dim = q.shape
    kv_heads = k.shape[1]
    groups = heads // kv_heads
    stacked = q.view(batch, kv_heads, groups, queries, dim).transpose(2, 3).contiguous()
    rows, keys = mask.shape[0], mask.shape[-1]
    mask = mask[:, :, :, None].expand(rows, 1, queries, groups, keys).contiguous()
    out = _grouped_step_attention(stacked.view(batch, kv_heads, queries * groups, dim), k, v,
                                  mask.view(rows, 1, queries * groups, keys), scale)
    return out.view(batch, kv_heads, queries, groups, dim).transpose(2, 3).reshape(batch, heads, queries, dim)


def _grouped_step_attention(q, k, v, mask, scale):
    """SDPA of a decoding step's grouped queries (batch, kv_heads, groups, dim) as two batched products: for 4 or
    more rows SDPA's CPU kernel takes 1.2-2.5x as long at these sizes (measured with 3-8 groups, 40-2000 keys)."""
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale if scale is not None else q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill_(~mask, float("-inf")) if mask.dtype == torch.bool else scores.add_(mask)
    return torch.matmul(scores.softmax(-1), v)


# ---------------------------------------------------------------------- rotary position embeddings
ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn", "longrope")


def rope_config(config) -> dict:
    """RoPE settings as one dict (rope_type, rope_theta, factor, ...), read from `rope_scaling` (older configs) or
    `rope_parameters`, with `rope_theta` and `original_max_position_embeddings` filled in like Transformers."""
    params = dict(getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None) or {})
    params.setdefault("rope_type", params.get("type", "default"))
    theta = getattr(config, "rope_theta", None)
    params.setdefault("rope_theta", theta if theta is not None else 10000.0)
    if params["rope_type"] in ("llama3", "yarn", "longrope"):
        original = getattr(config, "original_max_position_embeddings", None)
        if original is not None:
            params["original_max_position_embeddings"] = original
        else:
            params.setdefault("original_max_position_embeddings", config.max_position_embeddings)
    if params["rope_type"] not in ROPE_TYPES:
        raise ValueError(f"rope_type {params['rope_type']!r} is not supported; use one of {ROPE_TYPES}.")
    return params


def rope_frequencies(params: dict, head_dim: int, max_position_embeddings: int, seq_len=None):
    """Inverse frequencies (head_dim // 2,) and the factor applied to cos/sin, for the RoPE kind `params` names.

    `seq_len` (a tensor: largest position + 1) matters only to "dynamic" (the base grows past the trained length) and
    "longrope" (long factors past the original length).
    """
    kind, base = params["rope_type"], params["rope_theta"]
    dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    if kind == "dynamic":
        # NTK-aware scaling: a larger base once the sequence is longer than the trained length
        factor = params["factor"]
        if seq_len is None:
            length = max_position_embeddings
        else:
            length = torch.maximum(seq_len, torch.tensor(max_position_embeddings, dtype=seq_len.dtype))
        base = base * ((factor * length / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    inv_freq = 1.0 / (base ** exponents)
    if kind == "linear":
        return inv_freq / params["factor"], 1.0
    if kind == "llama3":
        return _llama3_frequencies(inv_freq, params), 1.0
    if kind == "yarn":
        return _yarn_frequencies(params, dim, max_position_embeddings)
    if kind == "longrope":
        return _longrope_frequencies(params, exponents, seq_len, max_position_embeddings)
    return inv_freq, 1.0


def _llama3_frequencies(inv_freq, params):
    """Llama 3.1: long wavelengths slowed by `factor`, short ones kept, the band between blended smoothly."""
    factor, low, high = params["factor"], params["low_freq_factor"], params["high_freq_factor"]
    trained = params["original_max_position_embeddings"]
    wavelength = 2 * math.pi / inv_freq
    scaled = torch.where(wavelength > trained / low, inv_freq / factor, inv_freq)
    blend = (trained / wavelength - low) / (high - low)
    blended = (1 - blend) * scaled / factor + blend * scaled
    middle = ~(wavelength < trained / high) * ~(wavelength > trained / low)
    return torch.where(middle, blended, scaled)


def _yarn_frequencies(params, dim, max_position_embeddings):
    """YaRN: interpolated and extrapolated frequencies mixed by a linear ramp over the dimensions."""
    base, factor = params["rope_theta"], params["factor"]
    trained = params["original_max_position_embeddings"]
    if factor is None:
        factor = max_position_embeddings / trained

    def mscale(scale, coefficient=1.0):
        return 1.0 if scale <= 1 else 0.1 * coefficient * math.log(scale) + 1.0

    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        m, m_all = params.get("mscale"), params.get("mscale_all_dim")
        attention_factor = float(mscale(factor, m) / mscale(factor, m_all)) if m and m_all else mscale(factor)

    def correction_dim(rotations):
        return (dim * math.log(trained / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(params.get("beta_fast") or 32), correction_dim(params.get("beta_slow") or 1)
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # a ramp of zero width would divide by zero
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    powers = base ** (torch.arange(0, dim, 2).float() / dim)
    keep_extrapolated = 1 - ramp
    inv_freq = (1.0 / (factor * powers)) * (1 - keep_extrapolated) + (1.0 / powers) * keep_extrapolated
    return inv_freq, attention_factor


def _longrope_frequencies(params, exponents, seq_len, max_position_embeddings):
    """LongRoPE: per-dimension factors, the long set once the sequence exceeds the original length."""
    trained = params["original_max_position_embeddings"]
    factor = params.get("factor") or max_position_embeddings / trained
    attention_factor = params.get("attention_factor")
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(trained))
    long = seq_len is not None and int(seq_len) > trained
    factors = torch.tensor(params["long_factor" if long else "short_factor"], dtype=torch.float32)
    return 1.0 / (factors * params["rope_theta"] ** exponents), attention_factor


def rotary_cos_sin(inv_freq, position_ids, attention_factor: float, dtype):
    """cos and sin (batch, seq, 2 * len(inv_freq)) for `position_ids` (batch or 1, seq)."""
    freqs = position_ids[..., None].float() * inv_freq.float()
    angles = torch.cat((freqs, freqs), dim=-1)
    cos, sin = angles.cos(), angles.sin()
    if attention_factor != 1.0:
        cos, sin = cos * attention_factor, sin * attention_factor
    return cos.to(dtype), sin.to(dtype)


def apply_rotary(x, cos, sin):
    """Rotate (batch, heads, seq, dim) queries or keys by the angles of `rotary_cos_sin` (halves paired)."""
    return rotate(x, *rotary_tables(cos, sin))


def rotary_tables(cos, sin):
    """The cos/sin of `rotary_cos_sin` as the (batch, 1, seq, dim) tables `rotate` reads, computed once per forward:
    cos, and sin with its first half negated."""
    half = sin.shape[-1] // 2
    return cos[:, None], torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)[:, None]


def rotate(x, cos, signed_sin):
    """`apply_rotary` with the tables of `rotary_tables`: x * cos + (x with its halves swapped) * signed_sin, the
    same numbers (the sign moves from x to sin, which is exact) in fewer operations."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


def rms_norm(x, weight, eps: float):
    """Root-mean-square norm computed in float32, then scaled by `weight` in the input dtype (Llama's RMSNorm)."""
    if x.dtype == torch.float32 and weight.dtype == torch.float32:
        return F.rms_norm(x, weight.shape, weight, eps)
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)


def keep_last_logits(hidden, logits_to_keep):
    """Positions whose logits are wanted: the last `logits_to_keep` (0 = all) or those a tensor lists."""
    if isinstance(logits_to_keep, int):
        return hidden if logits_to_keep == 0 else hidden[:, -logits_to_keep:]
    if logits_to_keep.dim() == 2:
        if logits_to_keep.dtype == torch.bool:
            return hidden[logits_to_keep]
        return torch.take_along_dim(hidden, logits_to_keep[..., None], dim=1)
    return hidden[:, logits_to_keep]


# ---------------------------------------------------------------------- encoder-decoder models
def shift_tokens_right(input_ids, pad_token_id, decoder_start_token_id):
    """Decoder inputs for teacher forcing: the start token, then `input_ids` (labels) moved one step right; the
    -100 of ignored label positions become padding."""
    if decoder_start_token_id is None:
        raise ValueError("config.decoder_start_token_id is not set; set it to the token the decoder starts from "
                         "(e.g. the pad token for T5 and Marian, </s> for BART).")
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is not set; set it to the padding token id.")
    shifted = input_ids.new_empty(input_ids.shape)
    shifted[..., 1:] = input_ids[..., :-1]
    shifted[..., 0] = decoder_start_token_id
    return shifted.masked_fill_(shifted == -100, pad_token_id)


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim) fixed position table of Marian and Pegasus: sines in the first half of each row, cosines
    of the same frequencies in the second (not interleaved). Computed in float64, returned in float32."""
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angles = position / torch.pow(10000.0, exponent)[None, :]  # (positions, dim); columns 2i and 2i+1 are equal
    return torch.cat([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=1).float()


def seq2seq_cache(config, cache, past_key_values, use_cache, cross_attention: bool):
    """The cache a decoder reads and fills, or None: the one given as `cache` or `past_key_values` (a Cache, or the
    older tuple of per-layer (keys, values[, cross keys, cross values])), else a new one when `use_cache` (default:
    config.use_cache). A decoder of an encoder-decoder model (`cross_attention`, or config.is_encoder_decoder) gets an
    `EncoderDecoderCache`; a plain cache given to it becomes that cache's self-attention part."""
    from .cache import DynamicCache, EncoderDecoderCache, as_cache

    past_key_values = cache if cache is not None else past_key_values
    use_cache = use_cache if use_cache is not None else config.use_cache
    cross_attention = cross_attention or config.is_encoder_decoder
    legacy = past_key_values
    if isinstance(legacy, (tuple, list)) and legacy and len(legacy[0]) == 4:
        past_key_values = EncoderDecoderCache(DynamicCache([layer[:2] for layer in legacy]),
                                              DynamicCache([layer[2:] for layer in legacy]))
    cache = as_cache(past_key_values)
    if cache is None and use_cache:
        cache = DynamicCache()
    if cache is not None and cross_attention and not isinstance(cache, EncoderDecoderCache):
        cache = EncoderDecoderCache(cache, DynamicCache())
    return cache


def cached_key_values(cache, layer_idx: int, cross_attention: bool, project, source):
    """(keys, values) of one attention layer of a decoder: `project(source)`, through the cache.

    Self-attention appends the new keys and values to the cache and attends over all of them. Cross-attention
    computes the encoder's keys and values once, stores them, and reads them back at every later step; when the
    encoder output repeats each row (expanded for beams or returned sequences) it projects each distinct row once.
    """
    if not cross_attention:
        keys, values = project(source)
        return (keys, values) if cache is None else getattr(cache, "self_attention_cache", cache).update(
            keys, values, layer_idx)
    if cache is not None and cache.is_updated.get(layer_idx):
        layer = cache.cross_attention_cache.layers[layer_idx]
        return layer.keys, layer.values
    copies = repeated_rows(source)
    keys, values = project(source[::copies] if copies > 1 else source)
    if copies > 1:
        keys, values = keys.repeat_interleave(copies, dim=0), values.repeat_interleave(copies, dim=0)
    if cache is None:
        return keys, values
    cache.is_updated[layer_idx] = True
    return cache.cross_attention_cache.update(keys, values, layer_idx)


def repeated_rows(x) -> int:
    """k when the batch of `x` is each of its distinct rows repeated k times in a row (as repeat_interleave makes
    them), else 1. Costs a comparison of the rows, far less than projecting them."""
    batch, copies = x.shape[0], 1
    if capturing():  # a recorded graph must not depend on the values
        return 1
    while copies < batch and torch.equal(x[copies], x[0]):
        copies += 1
    if copies == 1 or batch % copies:
        return 1
    grouped = x.reshape(batch // copies, copies, *x.shape[1:])
    return copies if torch.equal(grouped, grouped[:, :1].expand_as(grouped)) else 1


def last_eos_state(hidden, input_ids, eos_token_id):
    """(batch, width) hidden state at each row's last EOS token: the sentence vector of BART/T5 classifiers."""
    if input_ids is None:
        raise NotImplementedError("Sequence classification reads the EOS positions of input_ids; inputs_embeds "
                                  "alone is not supported.")
    eos = input_ids.eq(eos_token_id).to(hidden.device)
    counts = eos.sum(1)
    if bool((counts == 0).any()):
        raise ValueError("Each example must contain at least one <eos> token (config.eos_token_id); end every "
                         "sequence with it.")
    if bool((counts != counts[0]).any()):
        raise ValueError("All examples must have the same number of <eos> tokens.")
    return hidden[eos].view(hidden.shape[0], -1, hidden.shape[-1])[:, -1]


def reorder_self_attention(cache, beam_idx):
    """Beam-search reordering of an encoder-decoder cache that leaves the cross-attention keys and values in place:
    the beams of one input share them, and beams are only reordered within their input, so moving them would copy
    equal tensors at every step."""
    getattr(cache, "self_attention_cache", cache).reorder_cache(beam_idx)
    return cache


def token_loss(logits, labels):
    """Cross-entropy of each position's logits against labels at the same position (-100 ignored); None without
    labels. Encoder-decoder heads get labels already aligned with the decoder inputs (see shift_tokens_right)."""
    if labels is None:
        return None
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device))


def residual_block(hidden, sublayer, norm, pre_norm: bool, dropout: float, training: bool):
    """hidden + dropout(sublayer(x)) with the norm before the sublayer (`pre_norm`: x = norm(hidden)) or after the
    sum; `sublayer` returns (output, extra) and -> (new hidden, extra)."""
    out, extra = sublayer(norm(hidden) if pre_norm else hidden)
    out = hidden + F.dropout(out, dropout, training)
    return (out if pre_norm else norm(out)), extra


def output_flags(config, output_attentions, output_hidden_states) -> tuple[bool, bool]:
    """(want attention weights, want hidden states): the arguments, else the config's defaults."""
    return (config.output_attentions if output_attentions is None else output_attentions,
            config.output_hidden_states if output_hidden_states is None else output_hidden_states)


def run_layers(layers, hidden, want_weights: bool, layerdrop: float = 0.0, training: bool = False, final_norm=None,
               **layer_kwargs):
    """Run a stack of layers, each returning (hidden, attention weights, cross-attention weights), then `final_norm`
    (if any) -> (last hidden state, the hidden states entering each layer, attention weights, cross-attention
    weights). In training, each layer is skipped with probability `layerdrop` (LayerDrop)."""
    states, weights, crosses = [], [], []
    for layer in layers:
        states.append(hidden)
        if training and layerdrop > 0 and torch.rand([]) < layerdrop:
            continue
        hidden, layer_weights, cross = layer(hidden, want_weights=want_weights, **layer_kwargs)
        weights.append(layer_weights)
        crosses += [cross] if cross is not None else []
    hidden = final_norm(hidden) if final_norm is not None else hidden
    return hidden, states, tuple(weights), tuple(crosses)


def seq2seq_decoder_masks(attention_mask, encoder_attention_mask, query_len: int, past_len: int, want_weights: bool,
                          dtype, device):
    """(self-attention mask, is_causal, cross-attention mask) of an encoder-decoder's decoder step; additive
    float masks when attention weights are wanted (the explicit path), else what SDPA runs fastest with."""
    mask, is_causal = decoder_mask(attention_mask, query_len, past_len)
    if want_weights:
        mask, is_causal = additive_mask(mask, is_causal, query_len, past_len + query_len, dtype, device), False
    return mask, is_causal, padding_mask(encoder_attention_mask, dtype)


SEQ2SEQ_MODEL_ARGS = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask", "encoder_outputs",
                      "past_key_values", "inputs_embeds", "decoder_inputs_embeds", "use_cache", "output_attentions",
                      "output_hidden_states", "cache")


def seq2seq_model_args(values: dict) -> dict:
    """The encoder-decoder model arguments among a head's forward() locals: `self.model(**seq2seq_model_args(
    locals()))` passes them on after the head has adjusted them (e.g. decoder inputs made from labels)."""
    return {**{name: values.get(name) for name in SEQ2SEQ_MODEL_ARGS}, "return_dict": True}


def run_encoder_decoder(encoder, decoder, input_ids=None, attention_mask=None, decoder_input_ids=None,
                        decoder_attention_mask=None, encoder_outputs=None, past_key_values=None, inputs_embeds=None,
                        decoder_inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                        cache=None, **_ignored):
    """The encoder (unless its output is given: an output object or a tuple), then the decoder attending to it
    -> (decoder output, encoder output)."""
    from .outputs import as_encoder_output

    flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True)
    if encoder_outputs is None:
        encoder_outputs = encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                  **flags)
    encoder_outputs = as_encoder_output(encoder_outputs)
    out = decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                  encoder_hidden_states=encoder_outputs.last_hidden_state, encoder_attention_mask=attention_mask,
                  past_key_values=past_key_values, cache=cache, inputs_embeds=decoder_inputs_embeds,
                  use_cache=use_cache, **flags)
    return out, encoder_outputs


def nested_tied_pairs(model, pairs: dict) -> dict:
    """`pairs` plus the tied pairs of the models `model` holds as direct children (their names prefixed), like the
    encoder embeddings of the `model` inside a BART head."""
    pairs = dict(pairs)
    for name, child in model.named_children():
        if hasattr(child, "tied_weight_pairs"):
            pairs.update({f"{name}.{t}": f"{name}.{s}" for t, s in child.tied_weight_pairs().items()})
    return pairs


# ---------------------------------------------------------------------- relative position bias (T5 and its kin)
def relative_position_bucket(relative_position, bidirectional: bool = True, num_buckets: int = 32,
                             max_distance: int = 128):
    """Bucket of each (key - query) distance: exact when small, logarithmic up to `max_distance`, one bucket beyond.
    Bidirectional buckets keep half for keys after the query; causal ones only see the past."""
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets = (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    exact = num_buckets // 2
    far = exact + (torch.log(distance.float() / exact) / math.log(max_distance / exact) * (num_buckets - exact)).long()
    return buckets + torch.where(distance < exact, distance, torch.clamp(far, max=num_buckets - 1))


def relative_position_bias(table, query_len: int, key_len: int, past_len: int, bidirectional: bool,
                           max_distance: int):
    """(1, heads, query, key) bias read from `table` (an Embedding of buckets x heads) for queries at positions
    past_len.. over keys at 0..key_len-1."""
    device = table.weight.device
    relative = torch.arange(key_len, device=device)[None, :] - (torch.arange(query_len, device=device)[:, None]
                                                                 + past_len)  # (query, key)
    buckets = relative_position_bucket(relative, bidirectional, table.num_embeddings, max_distance)
    return table(buckets).permute(2, 0, 1)[None]


def clamp_half_overflow(hidden):
    """float16 activations that overflowed to inf are clamped back into range (T5-style models in half precision)."""
    if hidden.dtype == torch.float16 and bool(torch.isinf(hidden).any()):
        limit = torch.finfo(torch.float16).max - 1000
        hidden = hidden.clamp(-limit, limit)
    return hidden


def check_one_input(input_ids, inputs_embeds):
    """A stack reads token ids or vectors: exactly one of the two must be given."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids and inputs_embeds (of decoder_input_ids and "
                         "decoder_inputs_embeds for a decoder).")
