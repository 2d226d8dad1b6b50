"""Transformer-XL: segment recurrence (`mems`, the hidden states of earlier segments), relative-position attention,
adaptive input embeddings and a projected adaptive log-softmax. Attribute paths are checkpoint keys.

Tensors are batch-first inside; `mems` keep the (memory length, batch, d_model) layout that checkpoints' callers
exchange. The shared math is in `relative_attention.py` and `adaptive_softmax.py`; the task heads are in
transfo_xl_heads.py.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from ..adaptive_softmax import adaptive_embed, adaptive_log_probs, adaptive_nll, cluster_bounds
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import check_kwargs, finish
from ..layers import attention, capturing, check_one_input, expand_head_mask, merge_heads, output_flags
from ..modeling import PreTrainedModel
from ..outputs import ModelOutput
from ..relative_attention import distance_embeddings, inverse_frequencies, rel_shift, segment_attention_mask


class TransfoXLConfig(PretrainedConfig):
    model_type = "transfo-xl"
    keys_to_ignore_at_inference = ["mems"]  # evaluation collects predictions, not the memory
    attribute_map = {"n_token": "vocab_size", "hidden_size": "d_model", "num_attention_heads": "n_head",
                     "num_hidden_layers": "n_layer"}
    defaults = dict(
        vocab_size=267735, cutoffs=[20000, 40000, 200000], d_model=1024, d_embed=1024, n_head=16, d_head=64,
        d_inner=4096, div_val=4, pre_lnorm=False, n_layer=18, mem_len=1600, clamp_len=1000, same_length=True,
        attn_type=0, sample_softmax=-1, adaptive=True, dropout=0.1, dropatt=0.0, untie_r=True, init="normal",
        init_range=0.01, proj_init_std=0.01, init_std=0.02, layer_norm_epsilon=1e-5, eos_token_id=0)

    def __init__(self, **kwargs):
        share = kwargs.pop("proj_share_all_but_first", True)
        super().__init__(**kwargs)
        self.cutoffs = list(self.cutoffs)
        if "tie_projs" not in kwargs:  # the output projections of the tail clusters share the input ones
            self.tie_projs = [False] + [bool(share)] * len(self.cutoffs)


class TransfoXLModelOutput(ModelOutput):
    last_hidden_state: torch.Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


def _projection(rows: int, cols: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(rows, cols))


def _project(hidden, weight, bias, proj):
    """Logits of `hidden` (d_proj wide) against a cluster: through its projection to the cluster's width first."""
    return F.linear(hidden if proj is None else F.linear(hidden, proj.t()), weight, bias)


class AdaptiveEmbedding(nn.Module):
    """Token embeddings whose width shrinks by `div_val` per cluster, each projected to d_model, scaled by
    sqrt(d_model)."""

    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        self.vocab_size, self.cutoffs, self.div_val = config.vocab_size, list(config.cutoffs), config.div_val
        self.d_embed, self.d_proj, self.n_token = config.d_embed, config.d_model, config.vocab_size
        self.emb_scale = self.d_proj ** 0.5
        self.emb_layers, self.emb_projs = nn.ModuleList(), nn.ParameterList()
        if self.div_val == 1:
            self.emb_layers.append(nn.Embedding(self.vocab_size, self.d_embed))
            if self.d_proj != self.d_embed:
                self.emb_projs.append(_projection(self.d_proj, self.d_embed))
        else:
            for i, (start, end) in enumerate(cluster_bounds(self.cutoffs, self.vocab_size)):
                width = self.d_embed // (self.div_val ** i)
                self.emb_layers.append(nn.Embedding(end - start, width))
                self.emb_projs.append(_projection(self.d_proj, width))

    def forward(self, ids):
        if self.div_val == 1:
            embed = self.emb_layers[0](ids)
            if self.d_proj != self.d_embed:
                embed = F.linear(embed, self.emb_projs[0])
        else:
            lookups = [lambda local, i=i: F.linear(self.emb_layers[i](local), self.emb_projs[i])
                       for i in range(len(self.emb_layers))]
            embed = adaptive_embed(ids, self.cutoffs, self.vocab_size, lookups, self.d_proj,
                                   self.emb_projs[0].dtype)
        return embed * self.emb_scale


class ProjectedAdaptiveLogSoftmax(nn.Module):
    """The output layer: log-probabilities (or each label's negative log-likelihood) through the clusters of the
    adaptive softmax, each reached through its projection (`out_projs`) from d_model."""

    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        self.n_token, self.cutoffs, self.div_val = config.vocab_size, list(config.cutoffs), config.div_val
        d_embed, d_proj = self.d_embed, self.d_proj = config.d_embed, config.d_model
        bounds = cluster_bounds(self.cutoffs, self.n_token)
        self.n_clusters = len(bounds) - 1
        self.shortlist_size, self.keep_order = self.cutoffs[0], False
        self.head_size = self.shortlist_size + self.n_clusters
        if self.n_clusters > 0:
            self.cluster_weight = nn.Parameter(torch.zeros(self.n_clusters, d_embed))
            self.cluster_bias = nn.Parameter(torch.zeros(self.n_clusters))
        self.out_layers, self.out_projs = nn.ModuleList(), nn.ParameterList()
        for i, (start, end) in enumerate(bounds):
            width = d_embed if self.div_val == 1 else d_embed // (self.div_val ** i)
            self.out_projs.append(_projection(d_proj, width) if self.div_val != 1 or d_proj != d_embed else None)
            if self.div_val != 1:
                self.out_layers.append(nn.Linear(width, end - start))
        if self.div_val == 1:
            self.out_layers.append(nn.Linear(d_embed, self.n_token))

    def _logit_functions(self):
        """(head, tails): the logits of the shortlist plus one per cluster, and of each tail cluster."""
        parts = []
        for i, (start, end) in enumerate(cluster_bounds(self.cutoffs, self.n_token)):
            layer = self.out_layers[0 if self.div_val == 1 else i]
            weight, bias = layer.weight, layer.bias
            if self.div_val == 1 and self.n_clusters > 0:
                weight, bias = weight[start:end], bias[start:end]
            if i == 0 and self.n_clusters > 0:
                weight = torch.cat([weight, self.cluster_weight], dim=0)
                bias = torch.cat([bias, self.cluster_bias], dim=0)
            parts.append(lambda h, w=weight, b=bias, p=self.out_projs[i]: _project(h, w, b, p))
        return parts[0], parts[1:]

    def forward(self, hidden, labels=None):
        """(rows, d_model) -> (rows, vocab) log-probabilities, or with labels (rows,) their NLL (0 if ignored)."""
        head, tails = self._logit_functions()
        if labels is None:
            return adaptive_log_probs(hidden, head, tails)
        return adaptive_nll(hidden, labels, head, tails, self.cutoffs, self.n_token)


class PositionalEmbedding(nn.Module):
    """Holds the sinusoid frequencies (`inv_freq`, saved in checkpoints)."""

    def __init__(self, dim: int):
        super().__init__()
        self.demb = dim
        self.register_buffer("inv_freq", inverse_frequencies(dim))


class PositionwiseFF(nn.Module):
    def __init__(self, config: TransfoXLConfig):
        super().__init__()
        self.CoreNet = nn.Sequential(nn.Linear(config.d_model, config.d_inner), nn.ReLU(), nn.Dropout(config.dropout),
                                     nn.Linear(config.d_inner, config.d_model), nn.Dropout(config.dropout))
        self.layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.pre_lnorm = config.pre_lnorm
        self.d_model, self.d_inner, self.dropout = config.d_model, config.d_inner, config.dropout

    def forward(self, x):
        if self.pre_lnorm:
            return self.CoreNet(self.layer_norm(x)) + x
        return self.layer_norm(x + self.CoreNet(x))


class RelPartialLearnableMultiHeadAttn(nn.Module):
    """Attention over memory + segment with content (`r_w_bias`) and position (`r_r_bias`) biases."""

    def __init__(self, config: TransfoXLConfig, r_w_bias=None, r_r_bias=None):
        super().__init__()
        self.n_head, self.d_head, self.pre_lnorm = config.n_head, config.d_head, config.pre_lnorm
        self.d_model, self.dropout = config.d_model, config.dropout
        inner = config.n_head * config.d_head
        self.qkv_net = nn.Linear(config.d_model, 3 * inner, bias=False)
        self.drop = nn.Dropout(config.dropout)
        self.dropatt = nn.Dropout(config.dropatt)
        self.o_net = nn.Linear(inner, config.d_model, bias=False)
        self.layer_norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.scale = 1 / (config.d_head ** 0.5)
        # shared with the base model when untie_r is false (then also tied by name, see tied_weight_pairs)
        self.r_w_bias = r_w_bias if r_w_bias is not None else nn.Parameter(torch.empty(self.n_head, self.d_head))
        self.r_r_bias = r_r_bias if r_r_bias is not None else nn.Parameter(torch.empty(self.n_head, self.d_head))
        self.r_net = nn.Linear(config.d_model, inner, bias=False)

    def forward(self, x, positions, mask, memory, head_mask, want_weights, kept=None):
        """`kept`: a dict where the projection of `positions` is kept for the next call with the same ones."""
        whole = x if memory is None else torch.cat([memory, x], dim=1)    # (batch, keys, d_model)
        batch, keys, query_len = whole.shape[0], whole.shape[1], x.shape[1]
        source = self.layer_norm(whole) if self.pre_lnorm else whole
        inner = self.n_head * self.d_head  # qkv_net's rows: queries, keys, values; the memory needs no queries
        q = F.linear(source[:, -query_len:], self.qkv_net.weight[:inner])
        k, v = F.linear(source, self.qkv_net.weight[inner:]).chunk(2, dim=-1)
        q, k, v = (t.reshape(batch, -1, self.n_head, self.d_head).transpose(1, 2) for t in (q, k, v))
        r = None if kept is None else kept.get(self)
        if r is None:
            r = self.r_net(positions).view(keys, self.n_head, self.d_head).transpose(0, 1)  # (heads, keys, d_head)
            if kept is not None:
                kept[self] = r
        position_scores = rel_shift(torch.matmul(q + self.r_r_bias[:, None], r.transpose(-1, -2)))
        bias = position_scores * self.scale
        if capturing() or bool(mask.any()):  # a recorded graph must not depend on the values
            bias = bias.masked_fill(mask, torch.finfo(bias.dtype).min)
        dropout = self.dropatt.p if self.training else 0.0
        out, weights = attention(q + self.r_w_bias[:, None], k, v, bias, dropout, want_weights, self.scale,
                                 head_mask)
        out = self.drop(self.o_net(merge_heads(out)))
        return (x + out if self.pre_lnorm else self.layer_norm(x + out)), weights


class RelPartialLearnableDecoderLayer(nn.Module):
    def __init__(self, config: TransfoXLConfig, r_w_bias=None, r_r_bias=None):
        super().__init__()
        self.dec_attn = RelPartialLearnableMultiHeadAttn(config, r_w_bias, r_r_bias)
        self.pos_ff = PositionwiseFF(config)

    def forward(self, x, positions, mask, memory, head_mask, want_weights, kept=None):
        x, weights = self.dec_attn(x, positions, mask, memory, head_mask, want_weights, kept)
        return self.pos_ff(x), weights


class TransfoXLPreTrainedModel(PreTrainedModel):
    config_class = TransfoXLConfig
    base_model_prefix = "transformer"

    def tied_weight_pairs(self) -> dict[str, str]:
        """Shared position biases (untie_r false), output clusters tied to the input ones, tied projections."""
        config, pairs = self.config, {}
        base = "transformer." if self.base_model_prefix and hasattr(self, "transformer") else ""
        if not config.untie_r:
            for i in range(config.n_layer):
                for name in ("r_w_bias", "r_r_bias"):
                    pairs[f"{base}layers.{i}.dec_attn.{name}"] = f"{base}{name}"
        if hasattr(self, "crit"):
            if config.tie_word_embeddings:
                for i in range(len(self.crit.out_layers)):
                    pairs[f"crit.out_layers.{i}.weight"] = f"transformer.word_emb.emb_layers.{i}.weight"
            for i, tie in enumerate(config.tie_projs or []):
                if tie and config.div_val == 1 and config.d_model != config.d_embed:
                    pairs[f"crit.out_projs.{i}"] = "transformer.word_emb.emb_projs.0"
                elif tie and config.div_val != 1:
                    pairs[f"crit.out_projs.{i}"] = f"transformer.word_emb.emb_projs.{i}"
        return pairs

    def _init_weight(self, weight):
        if self.config.init == "uniform":
            nn.init.uniform_(weight, -self.config.init_range, self.config.init_range)
        else:
            nn.init.normal_(weight, 0.0, self.config.init_std)

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.proj_init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            self._init_weight(module.weight)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.normal_(module.weight, 1.0, self.config.init_std)
            module.bias.zero_()
        elif isinstance(module, (AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax)):
            for proj in (module.emb_projs if isinstance(module, AdaptiveEmbedding) else module.out_projs):
                if proj is not None:
                    nn.init.normal_(proj, 0.0, std)
            if getattr(module, "n_clusters", 0) > 0:
                self._init_weight(module.cluster_weight)
                module.cluster_bias.zero_()
        elif isinstance(module, PositionalEmbedding):
            module.inv_freq.copy_(inverse_frequencies(self.config.d_model))
        for name in ("r_w_bias", "r_r_bias"):
            if isinstance(module, (RelPartialLearnableMultiHeadAttn, TransfoXLModel)) and name in module._parameters:
                self._init_weight(module._parameters[name])

    @torch.no_grad()
    def resize_token_embeddings(self, new_num_tokens: int | None = None, layer: int = -1):
        """Resize cluster `layer` (default: the last) of the adaptive input embedding to make the vocabulary
        `new_num_tokens`; returns the embedding. New rows are initialised afresh, the cutoffs from that cluster on
        move. New tokens of an inner cluster need matching ids in the tokenizer."""
        base = getattr(self, self.base_model_prefix, self)
        embeddings = base.word_emb
        if new_num_tokens is None:
            return embeddings
        count = len(embeddings.emb_layers)
        layer = count - 1 if layer == -1 else layer
        if not 0 <= layer < count:
            raise ConfigError(f"layer={layer} is not a cluster of the adaptive embedding (0..{count - 1}, or -1).")
        old = embeddings.emb_layers[layer]
        size = new_num_tokens - sum(e.num_embeddings for e in embeddings.emb_layers) + old.num_embeddings
        if size <= 0:
            raise ConfigError(f"new_num_tokens={new_num_tokens} leaves cluster {layer} no rows; ask for more tokens.")
        if size != old.num_embeddings:
            new = nn.Embedding(size, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
            self._init_weight(new.weight)
            keep = min(size, old.num_embeddings)
            new.weight[:keep] = old.weight[:keep]
            embeddings.emb_layers[layer] = new
        sizes = [e.num_embeddings for e in embeddings.emb_layers]
        cutoffs = [*embeddings.cutoffs, embeddings.n_token]
        cutoffs[layer:] = [sum(sizes[:i + 1]) for i in range(layer, len(cutoffs))]  # (div_val 1: all the new size)
        self.config.vocab_size = base.n_token = embeddings.vocab_size = embeddings.n_token = new_num_tokens
        self.config.cutoffs, embeddings.cutoffs = cutoffs[:-1], cutoffs[:-1].copy()
        return embeddings


class TransfoXLModel(TransfoXLPreTrainedModel):
    def __init__(self, config: TransfoXLConfig):
        super().__init__(config)
        if config.attn_type != 0:
            raise ConfigError(f"attn_type={config.attn_type} is not supported: only attn_type=0 (Transformer-XL's "
                              f"relative attention, the one of released checkpoints) is implemented.")
        self.n_layer, self.mem_len = config.n_layer, config.mem_len
        self.same_length, self.clamp_len = config.same_length, config.clamp_len
        self.n_token, self.d_embed, self.d_model = config.vocab_size, config.d_embed, config.d_model
        self.n_head, self.d_head, self.attn_type = config.n_head, config.d_head, config.attn_type
        self.word_emb = AdaptiveEmbedding(config)
        self.drop = nn.Dropout(config.dropout)
        shared = (None, None)
        if not config.untie_r:
            self.r_w_bias = nn.Parameter(torch.empty(config.n_head, config.d_head))
            self.r_r_bias = nn.Parameter(torch.empty(config.n_head, config.d_head))
            shared = (self.r_w_bias, self.r_r_bias)
        self.layers = nn.ModuleList([RelPartialLearnableDecoderLayer(config, *shared) for _ in range(config.n_layer)])
        self.pos_emb = PositionalEmbedding(config.d_model)
        self._kept_positions = None  # see reusing_positions
        self.post_init()

    def get_input_embeddings(self):
        return self.word_emb

    def set_input_embeddings(self, value):
        self.word_emb = value

    def reset_memory_length(self, mem_len: int):
        self.mem_len = mem_len

    @contextlib.contextmanager
    def reusing_positions(self):
        """Within the block (generate), the distance embeddings of the last key length and each layer's projection
        of them are kept: once the memory is full every decoding step has the same. Weights must not change."""
        self._kept_positions = (None, None, None)
        try:
            yield
        finally:
            self._kept_positions = None

    def _positions(self, key_len: int, dtype):
        """(distance embeddings of key_len keys, the dict where layers keep their projections of them or None)."""
        kept = self._kept_positions  # read once: another thread's generate may end meanwhile
        if kept is None or self.training:
            return self.drop(distance_embeddings(key_len, self.pos_emb.inv_freq, self.clamp_len, dtype)), None
        if kept[0] != (key_len, dtype):
            kept = ((key_len, dtype), distance_embeddings(key_len, self.pos_emb.inv_freq, self.clamp_len, dtype), {})
            self._kept_positions = kept
        return kept[1:]

    def init_mems(self, batch_size: int):
        """The memory a first segment sees: `mem_len` zero states per layer, or None when mem_len is 0."""
        if self.mem_len <= 0:
            return None
        param = self.word_emb.emb_layers[0].weight
        return [torch.zeros(self.mem_len, batch_size, self.config.d_model, dtype=param.dtype, device=param.device)
                for _ in range(self.n_layer)]

    @torch.no_grad()
    def _update_mems(self, states, mems, query_len):
        """The last `mem_len` states of (memory, segment) for each layer, detached."""
        if mems is None:
            return None
        end = mems[0].shape[0] + max(0, query_len)
        start = max(0, end - self.mem_len)
        return [torch.cat([memory, state.transpose(0, 1)], dim=0)[start:end].detach()
                for memory, state in zip(mems, states)]

    def forward(self, input_ids=None, mems=None, head_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        check_one_input(input_ids, inputs_embeds)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        embeds = self.word_emb(input_ids) if inputs_embeds is None else inputs_embeds   # (batch, seq, d_model)
        batch, query_len = embeds.shape[:2]
        if mems is None:
            mems = self.init_mems(batch)
        mem_len = mems[0].shape[0] if mems is not None else 0
        mask = segment_attention_mask(query_len, mem_len, self.mem_len, self.same_length, embeds.device)
        positions, kept = self._positions(mem_len + query_len, embeds.dtype)
        head_masks = expand_head_mask(head_mask, self.n_layer, embeds.dtype)
        hidden, states, weights = self.drop(embeds), [], []
        for i, layer in enumerate(self.layers):
            states.append(hidden)
            memory = None if mems is None else mems[i].transpose(0, 1).to(hidden.dtype)  # (batch, mem, d_model)
            hidden, layer_weights = layer(hidden, positions, mask, memory, head_masks[i], want_weights, kept)
            weights.append(layer_weights)
        hidden = self.drop(hidden)
        out = TransfoXLModelOutput(
            last_hidden_state=hidden, mems=self._update_mems(states, mems, query_len),
            hidden_states=(*states, hidden) if want_hidden else None,
            attentions=tuple(weights) if want_weights else None)
        return finish(out, return_dict, self.config)
