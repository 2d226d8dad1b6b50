"""XLNet: relative-position attention with a content stream and a query stream, segment-relative biases and a
recurrence memory (`mems`) of earlier segments; the base model and the language-model head (`generate()` decodes
with a masked dummy target token, as the original does). The task heads are in xlnet_heads.py.

Tensors are batch-first inside; `mems` keep the (length, batch, hidden) layout checkpoints and callers exchange.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module
from ..chunking import apply_in_chunks
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import check_kwargs, finish
from ..layers import keep_last_logits, output_flags
from ..modeling import PreTrainedModel
from ..outputs import ModelOutput, Tensor


class XLNetConfig(PretrainedConfig):
    model_type = "xlnet"
    attribute_map = {"n_token": "vocab_size", "hidden_size": "d_model", "num_attention_heads": "n_head",
                     "num_hidden_layers": "n_layer"}
    defaults = dict(
        vocab_size=32000, d_model=1024, n_layer=24, n_head=16, d_inner=4096, d_head=None, ff_activation="gelu",
        attn_type="bi", initializer_range=0.02, layer_norm_eps=1e-12, dropout=0.1, mem_len=512, reuse_len=None,
        use_mems_eval=True, use_mems_train=False, bi_data=False, clamp_len=-1, same_length=False,
        summary_type="last", summary_use_proj=True, summary_activation="tanh", summary_last_dropout=0.1,
        start_n_top=5, end_n_top=5, pad_token_id=5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model={self.d_model} is not a multiple of n_head={self.n_head}.")
        self.d_head = self.d_head or self.d_model // self.n_head
        if self.d_head != self.d_model // self.n_head:
            raise ConfigError(f"d_head={self.d_head} must equal d_model // n_head = {self.d_model // self.n_head}.")
        if self.attn_type not in ("bi", "uni"):
            raise ConfigError(f"attn_type={self.attn_type!r} is not supported; use 'bi' (XLNet) or 'uni'.")

    @property
    def max_position_embeddings(self) -> int:
        """-1: relative positions put no limit on the sequence length."""
        return -1

    @max_position_embeddings.setter
    def max_position_embeddings(self, value):
        raise ConfigError("XLNet has no max_position_embeddings (relative positions put no limit on the sequence "
                          "length); limit inputs with the tokenizer's max_length instead.")


class XLNetModelOutput(ModelOutput):
    last_hidden_state: Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class XLNetLMHeadModelOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


def rel_shift(scores: torch.Tensor, key_len: int) -> torch.Tensor:
    """(batch, heads, query, rel) scores over relative distances -> (batch, heads, query, key) over key positions:
    row i moves left by (query - i), the Transformer-XL shift."""
    batch, heads, query, rel = scores.shape
    shifted = scores.reshape(batch, heads, rel, query)[:, :, 1:].reshape(batch, heads, query, rel - 1)
    return shifted[..., :key_len]


class XLNetRelativeAttention(nn.Module):
    """Projections (d_model, heads, head_dim) named like the checkpoints; scores = content + position + segment."""

    def __init__(self, config: XLNetConfig):
        super().__init__()
        d_model, heads, head_dim = config.d_model, config.n_head, config.d_head
        self.d_model, self.n_head, self.d_head, self.scale = d_model, heads, head_dim, head_dim ** -0.5
        for name in ("q", "k", "v", "o", "r"):
            setattr(self, name, nn.Parameter(torch.empty(d_model, heads, head_dim)))
        for name in ("r_r_bias", "r_s_bias", "r_w_bias"):
            setattr(self, name, nn.Parameter(torch.empty(heads, head_dim)))
        self.seg_embed = nn.Parameter(torch.empty(2, heads, head_dim))
        self.layer_norm = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def core(self, q, k, v, k_r, seg, mask, want_weights):
        """Attention of queries q (batch, heads, query, head_dim) over keys/values k, v and relative positions
        k_r; `seg` (batch, query, key) is True where two tokens lie in different segments; `mask` is 1 where
        attention is forbidden."""
        content = torch.matmul(q + self.r_w_bias[:, None], k.transpose(-1, -2))
        position = rel_shift(torch.matmul(q + self.r_r_bias[:, None], k_r.transpose(-1, -2)), k.shape[2])
        scores = content + position
        if seg is not None:
            per_segment = torch.einsum("bnid,snd->bnis", q + self.r_s_bias[:, None], self.seg_embed)
            scores = scores + torch.where(seg[:, None], per_segment[..., 1:], per_segment[..., :1])
        scores = scores * self.scale
        if mask is not None:
            scores = scores - (65500 if mask.dtype == torch.float16 else 1e30) * mask
        weights = self.dropout(scores.softmax(dim=-1))
        return torch.matmul(weights, v), (weights if want_weights else None)

    def project(self, x, weight):
        """(batch, length, d_model) -> (batch, heads, length, head_dim) through a (d_model, heads, head_dim)
        weight."""
        out = torch.matmul(x, weight.reshape(self.d_model, -1))
        return out.view(*x.shape[:2], self.n_head, self.d_head).transpose(1, 2)

    def post_attention(self, residual, attn_vec):
        batch, _, length, _ = attn_vec.shape  # (batch, heads, length, head_dim) -> (batch, length, d_model)
        merged = attn_vec.transpose(1, 2).reshape(batch, length, -1)
        out = self.dropout(F.linear(merged, self.o.reshape(self.d_model, -1)))  # no copy of the weight, unlike einsum
        return self.layer_norm(out + residual)

    def forward(self, h, g, mask_h, mask_g, r, seg, mem, target_mapping, want_weights):
        context = h if mem is None else torch.cat([mem, h], dim=1)
        k, v = self.project(context, self.k), self.project(context, self.v)  # (batch, heads, key, dim)
        k_r = self.project(r.to(self.r.dtype), self.r)
        vec_h, weights_h = self.core(self.project(h, self.q), k, v, k_r, seg, mask_h, want_weights)
        out_h = self.post_attention(h, vec_h)
        if g is None:
            return out_h, None, weights_h
        q_g = self.project(g, self.q)
        if target_mapping is not None:  # each prediction's query moves to the position it predicts, and back
            q_g = torch.einsum("bnmd,bml->bnld", q_g, target_mapping)
        vec_g, weights_g = self.core(q_g, k, v, k_r, seg, mask_g, want_weights)
        if target_mapping is not None:
            vec_g = torch.einsum("bnld,bml->bnmd", vec_g, target_mapping)
        return out_h, self.post_attention(g, vec_g), (weights_h, weights_g) if want_weights else None


class XLNetFeedForward(nn.Module):
    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.layer_1 = nn.Linear(config.d_model, config.d_inner)
        self.layer_2 = nn.Linear(config.d_inner, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.activation_function = activation_module(config.ff_activation)

    def forward(self, x):
        out = self.dropout(self.layer_2(self.dropout(self.activation_function(self.layer_1(x)))))
        return self.layer_norm(out + x)


class XLNetLayer(nn.Module):
    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.rel_attn = XLNetRelativeAttention(config)
        self.ff = XLNetFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1  # (batch, seq, d_model)

    def forward(self, h, g, mask_h, mask_g, r, seg, mem, target_mapping, want_weights):
        h, g, weights = self.rel_attn(h, g, mask_h, mask_g, r, seg, mem, target_mapping, want_weights)
        return self.ff_chunks(h), (None if g is None else self.ff_chunks(g)), weights

    def ff_chunks(self, hidden):
        return apply_in_chunks(self.ff, self.chunk_size_feed_forward, self.seq_len_dim, hidden)


class XLNetPreTrainedModel(PreTrainedModel):
    config_class = XLNetConfig
    base_model_prefix = "transformer"

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, XLNetRelativeAttention):
            for name in ("q", "k", "v", "o", "r", "r_r_bias", "r_s_bias", "r_w_bias", "seg_embed"):
                getattr(module, name).normal_(mean=0.0, std=std)
        elif isinstance(module, XLNetModel):
            module.mask_emb.normal_(mean=0.0, std=std)


def relative_positions(config, query_len: int, key_len: int, batch: int, device, dtype) -> torch.Tensor:
    """(batch, rel, d_model) sinusoidal encodings of the relative distances key_len .. -query_len (+1 for 'uni'),
    clamped to clamp_len; with bi_data the second half of the batch reads the distances backwards."""
    inv_freq = 1 / torch.pow(10000, torch.arange(0, config.d_model, 2, device=device).float() / config.d_model)
    end = -query_len if config.attn_type == "bi" else -1
    forward = torch.arange(key_len, end, -1, device=device).float()
    sequences = [forward, -forward] if config.bi_data else [forward]
    if config.bi_data and batch % 2:
        raise ConfigError(f"bi_data=True needs an even batch (forward and backward halves); got batch {batch}.")
    rows = []
    for seq in sequences:
        if config.clamp_len > 0:
            seq = seq.clamp(-config.clamp_len, config.clamp_len)
        angles = seq[:, None] * inv_freq
        table = torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)
        rows.append(table[None].expand(batch // len(sequences), -1, -1))
    return torch.cat(rows, dim=0)


def attention_masks(config, attention_mask, input_mask, perm_mask, query_len: int, mem_len: int, dtype, device):
    """-> (mask of the query stream, mask of the content stream), each (batch, 1, query or 1, key) with 1 where
    attention is forbidden, or None; the content stream always sees its own token."""
    if input_mask is not None and attention_mask is not None:
        raise ValueError("Pass only one of input_mask (1 = padding) and attention_mask (0 = padding).")
    if input_mask is None and attention_mask is not None:
        input_mask = 1.0 - attention_mask.to(dtype)
    mask = None
    if config.attn_type == "uni":
        mask = torch.ones(query_len, query_len + mem_len, device=device).triu_(mem_len + 1)
        if config.same_length:
            mask[:, :query_len] += torch.ones(query_len, query_len, device=device).tril(-1)
        mask = mask[None]  # (1, query, key)
    data = None
    if input_mask is not None:
        data = input_mask[:, None].to(dtype)  # (batch, 1, query)
    if perm_mask is not None:
        data = perm_mask.to(dtype) if data is None else data + perm_mask
    if data is not None:
        data = F.pad(data, (mem_len, 0))  # the memory is always visible
        mask = data if mask is None else mask + data
    if mask is None:
        return None, None
    mask = (mask > 0).to(dtype)
    own = torch.eye(query_len, device=device, dtype=dtype)
    mask_h = (mask - F.pad(own, (mem_len, 0)) > 0).to(dtype)
    return mask[:, None], mask_h[:, None]


class XLNetModel(XLNetPreTrainedModel):
    def __init__(self, config: XLNetConfig):
        super().__init__(config)
        self.mem_len, self.reuse_len, self.n_layer = config.mem_len, config.reuse_len, config.n_layer
        self.d_model = config.d_model
        self.same_length, self.attn_type, self.bi_data, self.clamp_len = (config.same_length, config.attn_type,
                                                                          config.bi_data, config.clamp_len)
        self.word_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.mask_emb = nn.Parameter(torch.empty(1, 1, config.d_model))
        self.layer = nn.ModuleList([XLNetLayer(config) for _ in range(config.n_layer)])
        self.dropout = nn.Dropout(config.dropout)
        self.post_init()

    def get_input_embeddings(self):
        return self.word_embedding

    def set_input_embeddings(self, value):
        self.word_embedding = value

    def cache_mem(self, current, previous):
        """The memory the next segment sees: (the first reuse_len of) `current` after `previous`, the last
        mem_len positions of it (all when mem_len is 0 or None), as (length, batch, hidden)."""
        reuse_len, mem_len = self.config.reuse_len, self.config.mem_len
        current = current.transpose(0, 1)
        if reuse_len is not None and reuse_len > 0:
            current = current[:reuse_len]
        new = current if previous is None else torch.cat([previous, current], dim=0)
        return (new[-mem_len:] if mem_len else new).detach()

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, use_mems=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        config = self.config
        want_weights, want_hidden = output_flags(config, output_attentions, output_hidden_states)
        if use_mems is None:
            use_mems = config.use_mems_train if self.training else config.use_mems_eval
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        embeds = self.word_embedding(input_ids) if inputs_embeds is None else inputs_embeds
        batch, query_len = embeds.shape[:2]
        mem_len = mems[0].shape[0] if mems is not None and mems[0] is not None else 0
        dtype, device = self.dtype, embeds.device
        mask_g, mask_h = attention_masks(config, attention_mask, input_mask, perm_mask, query_len, mem_len, dtype,
                                         device)
        h = self.dropout(embeds)
        if target_mapping is not None:
            target_mapping = target_mapping.to(dtype)
        g = None if target_mapping is None else self.dropout(self.mask_emb.expand(batch, target_mapping.shape[1], -1))
        seg = None
        if token_type_ids is not None:  # True where query and key lie in different segments (memory: segment 0)
            seg = token_type_ids[:, :, None] != F.pad(token_type_ids, (mem_len, 0))[:, None, :]
        # one position table serves every row unless the rows differ (bi_data) or each draws its own dropout
        rows = batch if config.bi_data or (self.training and self.dropout.p > 0) else 1
        r = self.dropout(relative_positions(config, query_len, mem_len + query_len, rows, device, h.dtype))
        new_mems, states, weights = [], [], []
        for i, layer in enumerate(self.layer):
            mem = None if mems is None or mems[i] is None else mems[i].transpose(0, 1)
            if use_mems:
                new_mems.append(self.cache_mem(h, None if mems is None else mems[i]))
            states.extend((h, g) if g is not None else (h,))
            h, g, layer_weights = layer(h, g, mask_h, mask_g, r, seg, mem, target_mapping, want_weights)
            weights.append(layer_weights)
        states.extend((h, g) if g is not None else (h,))
        out = XLNetModelOutput(last_hidden_state=self.dropout(g if g is not None else h),
                               mems=tuple(new_mems) if use_mems else None,
                               hidden_states=tuple(states) if want_hidden else None,
                               attentions=tuple(weights) if want_weights else None)
        return finish(out, return_dict, config)


XLNET_ARGS = ("input_ids", "attention_mask", "mems", "perm_mask", "target_mapping", "token_type_ids", "input_mask",
              "inputs_embeds", "use_mems", "output_attentions", "output_hidden_states")


def run_transformer(model, args: dict) -> XLNetModelOutput:
    """The base model's output for a head's forward() arguments (its locals())."""
    check_kwargs(model, args.get("kwargs", {}))
    return model.transformer(**{name: args[name] for name in XLNET_ARGS if name in args}, return_dict=True)


def head_output(output_cls, out: XLNetModelOutput, return_dict, config, **fields):
    """`output_cls` with `fields` and the base model's mems, hidden states and attentions."""
    return finish(output_cls(**fields, mems=out.mems, hidden_states=out.hidden_states, attentions=out.attentions),
                  return_dict, config)


class XLNetLMHeadModel(XLNetPreTrainedModel, GenerationMixin):
    """Vocabulary scores (`lm_loss`, tied to the word embeddings) at every position, or at each prediction of
    `target_mapping`; the loss compares them with `labels` at the same positions (no shift)."""

    _tied_weights_keys = {"lm_loss.weight": "transformer.word_embedding.weight"}

    def __init__(self, config: XLNetConfig):
        super().__init__(config)
        self.attn_type, self.same_length = config.attn_type, config.same_length
        self.transformer = XLNetModel(config)
        self.lm_loss = nn.Linear(config.d_model, config.vocab_size, bias=True)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_loss

    def set_output_embeddings(self, value):
        self.lm_loss = value

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, labels=None, use_mems=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, logits_to_keep=0, **kwargs):
        out = run_transformer(self, locals())
        logits = self.lm_loss(keep_last_logits(out.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device))
        return head_output(XLNetLMHeadModelOutput, out, return_dict, self.config, loss=loss, logits=logits)

    # ------------------------------------------------------------------ generation: `mems` are the cache
    def _cache_argument(self) -> str:
        return "mems"

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, batch_size, max_cache_length):
        """The first step runs without memory; each step returns the next one."""

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, mems=None, use_mems=None,
                                      **kwargs):
        """The tokens so far (with memory: the last two, recomputed) and a dummy target token that no position
        sees (`perm_mask`) and whose prediction is read (`target_mapping`); the padding mask is not used, as in
        the original decoding."""
        offset = 2
        rows = input_ids.shape[0]
        if mems:
            input_ids = input_ids[:, -offset:]
            mems = tuple(layer[:-offset] for layer in mems)
        input_ids = F.pad(input_ids, (0, 1))  # (rows, length + 1), the dummy token last
        length = input_ids.shape[1]
        perm_mask = input_ids.new_zeros((rows, length, length), dtype=torch.float)
        perm_mask[:, :, -1] = 1.0
        target_mapping = input_ids.new_zeros((rows, 1, length), dtype=torch.float)
        target_mapping[:, 0, -1] = 1.0
        inputs = {"input_ids": input_ids, "perm_mask": perm_mask, "target_mapping": target_mapping,
                  "use_mems": use_mems}
        if mems:
            inputs["mems"] = mems
        for name in ("attention_mask", "use_cache", "position_ids", "is_first_iteration"):
            kwargs.pop(name, None)
        return {**kwargs, **inputs}

    def _contrastive_search(self, *args, **kwargs):
        raise ConfigError("Contrastive search (penalty_alpha) repeats the rows of a key/value cache, and XLNet's "
                          "memory (mems) is not one: use greedy decoding, sampling or beam search.")

    @staticmethod
    def _reorder_cache(mems, beam_idx):
        """The memory of the beams kept, in their new order (rows are dim 1 of each (length, batch, hidden))."""
        return tuple(layer.index_select(1, beam_idx.to(layer.device)) for layer in mems)
