"""DeBERTa: config, encoder and base model (the task heads are in deberta_heads.py). BERT-style layers whose
attention adds disentangled relative-position scores (content-to-position and position-to-content, `pos_att_type`).
DeBERTa-v2/v3 (deberta_v2.py) reuse all of it and change the attention projections, the relative-position window and
the encoder's extras. Attribute paths are checkpoint keys."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration import PretrainedConfig
from ..disentangled_attention import (attention_scale, biased_attention, disentangled_bias, masked_bias,
                                      max_relative_positions, pair_mask, position_terms, position_window)
from ..errors import ConfigError
from ..heads import check_kwargs
from ..layers import merge_heads, output_flags, split_heads
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutput, pack
from .bert import BertIntermediate, BertOutput, BertSelfOutput, WordEmbeddings, check_encoder_inputs


class DebertaConfig(PretrainedConfig):
    model_type = "deberta"
    defaults = dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=0,
                    initializer_range=0.02, layer_norm_eps=1e-7, relative_attention=False, max_relative_positions=-1,
                    pad_token_id=0, bos_token_id=None, eos_token_id=None, position_biased_input=True,
                    pos_att_type=None, pooler_dropout=0.0, pooler_hidden_act="gelu", legacy=True,
                    tie_word_embeddings=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if isinstance(self.pos_att_type, str):  # older configs: "c2p|p2c"
            self.pos_att_type = [part.strip() for part in self.pos_att_type.lower().split("|")]
        if getattr(self, "pooler_hidden_size", None) is None:
            self.pooler_hidden_size = self.hidden_size


# ---------------------------------------------------------------------- building blocks
class DebertaEmbeddings(nn.Module):
    """Word (+ absolute position when position_biased_input) (+ token type when type_vocab_size > 0) embeddings of
    width embedding_size, projected to hidden_size when it differs, LayerNorm, padding positions zeroed."""

    def __init__(self, config):
        super().__init__()
        width = self.embedding_size = getattr(config, "embedding_size", config.hidden_size)
        self.word_embeddings = nn.Embedding(config.vocab_size, width, padding_idx=config.pad_token_id)
        self.position_biased_input = getattr(config, "position_biased_input", True)
        self.position_embeddings = (nn.Embedding(config.max_position_embeddings, width)
                                    if self.position_biased_input else None)
        self.token_type_embeddings = (nn.Embedding(config.type_vocab_size, width) if config.type_vocab_size > 0
                                      else None)
        self.embed_proj = nn.Linear(width, config.hidden_size, bias=False) if width != config.hidden_size else None
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, mask=None):
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        if self.position_embeddings is not None:
            embeddings = embeddings + (self.position_embeddings.weight[:embeddings.shape[1]] if position_ids is None
                                       else self.position_embeddings(position_ids.long()))
        if self.token_type_embeddings is not None:
            embeddings = embeddings + (self.token_type_embeddings.weight[0] if token_type_ids is None
                                       else self.token_type_embeddings(token_type_ids))
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.LayerNorm(embeddings)
        if mask is not None:
            embeddings = embeddings * mask[..., None].to(embeddings.dtype)
        return self.dropout(embeddings)


class DisentangledSelfAttention(nn.Module):
    """DeBERTa's attention: one bias-free `in_proj` for query/key/value (per head: q, k, v side by side), separate
    `q_bias` and `v_bias`, and the position projections `pos_proj` (c2p) and `pos_q_proj` (p2c)."""

    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ConfigError(f"hidden_size={config.hidden_size} must be a multiple of num_attention_heads="
                              f"{config.num_attention_heads}.")
        if getattr(config, "talking_head", False):
            raise ConfigError("talking_head=True is not supported; set talking_head=False.")
        self.num_heads = self.num_attention_heads = config.num_attention_heads
        self.head_dim = self.attention_head_size = self.head_size(config)
        self.all_head_size, self.talking_head = self.num_heads * self.head_dim, False
        self.head_logits_proj = self.head_weights_proj = None  # the talking-head projections, refused above
        self.init_projections(config)
        self.terms = position_terms(config)
        self.relative_attention = getattr(config, "relative_attention", False)
        self.scale = attention_scale(self.head_dim, len(self.terms))
        if self.relative_attention:
            self.pos_dropout = nn.Dropout(config.hidden_dropout_prob)
            self.max_relative_positions = max_relative_positions(config)
            self.init_position_projections(config)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)  # its p is read by the attention in training

    def head_size(self, config) -> int:
        return config.hidden_size // config.num_attention_heads

    def init_projections(self, config):
        width = self.num_heads * self.head_dim
        self.in_proj = nn.Linear(config.hidden_size, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))

    def init_position_projections(self, config):
        width = self.num_heads * self.head_dim
        if "c2p" in self.terms:
            self.pos_proj = nn.Linear(config.hidden_size, width, bias=False)
        if "p2c" in self.terms:
            self.pos_q_proj = nn.Linear(config.hidden_size, width)

    def project(self, hidden):
        """(query, key, value), each (batch, heads, seq, head_dim)."""
        batch, seq, _ = hidden.shape
        q, k, v = self.in_proj(hidden).view(batch, seq, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4)
        bias_shape = (self.num_heads, 1, self.head_dim)
        return q + self.q_bias.view(bias_shape), k, v + self.v_bias.view(bias_shape)

    def position_tables(self, window):
        """(pos_key, pos_query), each (heads, rows, head_dim) and pre-scaled, or None when its term is off."""
        pos_key = self._table(self.pos_proj, window) if "c2p" in self.terms else None
        pos_query = self._table(self.pos_q_proj, window) if "p2c" in self.terms else None
        return pos_key, pos_query

    def _table(self, proj, window):
        return split_heads(proj(window)[None], self.num_heads)[0] * self.scale  # (heads, rows, head_dim)

    def forward(self, hidden, mask=None, window=None, index=None, want_weights=False):
        q, k, v = self.project(hidden)
        bias = None
        if self.relative_attention and window is not None:
            pos_key, pos_query = self.position_tables(self.pos_dropout(window))
            bias = disentangled_bias(q, k, pos_key, pos_query, index)
        bias = masked_bias(bias, mask, q.dtype)
        out, weights = biased_attention(q, k, v, bias, self.scale, self.dropout.p if self.training else 0.0,
                                        want_weights)
        return merge_heads(out), weights  # (batch, seq, heads * head_dim)


class DebertaAttention(nn.Module):
    def __init__(self, config, self_attention_class):
        super().__init__()
        self.self = self_attention_class(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden, mask, window, index, want_weights):
        out, weights = self.self(hidden, mask, window, index, want_weights)
        return self.output(out, hidden), weights


class DebertaLayer(nn.Module):
    def __init__(self, config, self_attention_class=DisentangledSelfAttention):
        super().__init__()
        self.attention = DebertaAttention(config, self_attention_class)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden, mask=None, window=None, index=None, want_weights=False):
        hidden, weights = self.attention(hidden, mask, window, index, want_weights)
        return self.output(self.intermediate(hidden), hidden), weights


class DebertaEncoder(nn.Module):
    """The layers and the relative-position table `rel_embeddings` (2 * max_relative_positions rows)."""

    self_attention_class = DisentangledSelfAttention

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([DebertaLayer(config, self.self_attention_class)
                                    for _ in range(config.num_hidden_layers)])
        self.relative_attention = getattr(config, "relative_attention", False)
        self.max_relative_positions = max_relative_positions(config)
        if self.relative_attention:
            self.rel_embeddings = nn.Embedding(self.table_rows(config), config.hidden_size)

    def table_rows(self, config) -> int:
        return 2 * self.max_relative_positions

    def relative_window(self, seq: int, device):
        """(the rows of rel_embeddings the layers read, the (seq, seq) index of each query/key pair into them): a
        window of 2 * span rows centred on distance 0, span = min(seq, max_relative_positions)."""
        span = min(seq, self.max_relative_positions)
        rows, index = position_window(seq, span, device=device)
        start = self.max_relative_positions - span
        return self.rel_embeddings.weight[start + rows.start:start + rows.stop], index

    def after_first_layer(self, embedded, hidden, attention_mask):
        return hidden

    def forward(self, hidden, attention_mask=None, want_weights=False, want_hidden=False):
        mask = pair_mask(attention_mask)  # (batch, 1, seq, seq) bool, or None
        window = index = None
        if self.relative_attention:
            window, index = self.relative_window(hidden.shape[1], hidden.device)
        embedded, states, weights = hidden, [hidden], []
        for i, layer in enumerate(self.layer):
            hidden, layer_weights = layer(hidden, mask, window, index, want_weights)
            if i == 0:
                hidden = self.after_first_layer(embedded, hidden, attention_mask)
            states.append(hidden)
            weights.append(layer_weights)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=tuple(states) if want_hidden else None,
                               attentions=tuple(weights) if want_weights else None)


# ---------------------------------------------------------------------- models
class DebertaPreTrainedModel(PreTrainedModel):
    config_class = DebertaConfig
    base_model_prefix = "deberta"
    _keys_to_ignore_on_load_unexpected = (r"position_embeddings", r"embeddings\.position_ids$")

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, DisentangledSelfAttention) and hasattr(module, "q_bias"):
            module.q_bias.zero_()
            module.v_bias.zero_()


class DebertaModel(WordEmbeddings, DebertaPreTrainedModel):
    """Embeddings and the disentangled-attention encoder; no pooler."""

    encoder_class = DebertaEncoder

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = DebertaEmbeddings(config)
        self.encoder = self.encoder_class(config)
        self.z_steps = 0  # the original's extra decoding passes over the last layer; always 0 here, as there
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                head_mask=None, **kwargs):
        check_kwargs(self, kwargs)
        check_encoder_inputs(input_ids, inputs_embeds, None)
        if head_mask is not None:
            raise ConfigError(f"{type(self).__name__} does not take head_mask; leave it out.")
        if attention_mask is not None and attention_mask.dim() != 2:
            raise ValueError("attention_mask must be (batch, seq) 0/1 values; DeBERTa builds the pairwise mask.")
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, attention_mask)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        out = self.encoder(hidden, attention_mask, want_weights, want_hidden)
        return pack(BaseModelOutput, return_dict, self.config, last_hidden_state=out.last_hidden_state,
                    hidden_states=out.hidden_states, attentions=out.attentions)
