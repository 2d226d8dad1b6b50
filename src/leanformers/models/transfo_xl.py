"""Transformer-XL: segment recurrence (`mems`, the hidden states of earlier segments), relative-position attention,
adaptive input embeddings and a projected adaptive log-softmax. Attribute paths are checkpoint keys.

Tensors are batch-first inside; `mems` keep the (memory length, batch, d_model) layout that checkpoints' callers
exchange. The shared math is in `relative_attention.py` and `adaptive_softmax.py`; the task heads are in
transfo_xl_heads.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..adaptive_softmax import adaptive_embed, adaptive_log_probs, adaptive_nll, cluster_bounds
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import check_kwargs, finish
from ..layers import attention, check_one_input, expand_head_mask, merge_heads, output_flags
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


class TransfoXLLMHeadModelOutput(ModelOutput):
    losses: torch.Tensor | None = None
    prediction_scores: torch.Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    loss: torch.Tensor | None = None

    @property
    def logits(self):
        """The log-probabilities (`prediction_scores`), which generation reads as logits."""
        return self.prediction_scores


class TransfoXLSequenceClassifierOutputWithPast(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor = None
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

    def forward(self, x, positions, mask, memory, head_mask, want_weights):
        whole = x if memory is None else torch.cat([memory, x], dim=1)    # (batch, keys, d_model)
        batch, keys, query_len = whole.shape[0], whole.shape[1], x.shape[1]
        heads = self.qkv_net(self.layer_norm(whole) if self.pre_lnorm else whole)
        q, k, v = (t.reshape(batch, -1, self.n_head, self.d_head).transpose(1, 2) for t in heads.chunk(3, dim=-1))
        q = q[:, :, -query_len:]                                           # (batch, heads, queries, d_head)
        r = self.r_net(positions).view(keys, self.n_head, self.d_head).transpose(0, 1)  # (heads, keys, d_head)
        position_scores = rel_shift(torch.matmul(q + self.r_r_bias[:, None], r.transpose(-1, -2)))
        bias = position_scores * self.scale
        if bool(mask.any()):
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

    def forward(self, x, positions, mask, memory, head_mask, want_weights):
        x, weights = self.dec_attn(x, positions, mask, memory, head_mask, want_weights)
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

    def resize_token_embeddings(self, *args, **kwargs):
        raise ConfigError("Resizing the adaptive embeddings of Transformer-XL is not supported; build a config with "
                          "the new vocab_size and cutoffs and train the clusters you change.")


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
        self.post_init()

    def get_input_embeddings(self):
        return self.word_emb

    def set_input_embeddings(self, value):
        self.word_emb = value

    def reset_memory_length(self, mem_len: int):
        self.mem_len = mem_len

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
        positions = self.drop(distance_embeddings(mem_len + query_len, self.pos_emb.inv_freq, self.clamp_len,
                                                  embeds.dtype))
        head_masks = expand_head_mask(head_mask, self.n_layer, embeds.dtype)
        hidden, states, weights = self.drop(embeds), [], []
        for i, layer in enumerate(self.layers):
            states.append(hidden)
            memory = None if mems is None else mems[i].transpose(0, 1).to(hidden.dtype)  # (batch, mem, d_model)
            hidden, layer_weights = layer(hidden, positions, mask, memory, head_masks[i], want_weights)
            weights.append(layer_weights)
        hidden = self.drop(hidden)
        out = TransfoXLModelOutput(
            last_hidden_state=hidden, mems=self._update_mems(states, mems, query_len),
            hidden_states=(*states, hidden) if want_hidden else None,
            attentions=tuple(weights) if want_weights else None)
        return finish(out, return_dict, self.config)
