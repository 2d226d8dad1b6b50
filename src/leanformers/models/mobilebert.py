"""MobileBERT: config, the bottlenecked encoder and the base model; the task heads are in mobilebert_heads.py.
Attribute paths are checkpoint keys.

Each layer narrows the hidden state (`hidden_size`) to `intra_bottleneck_size` (`use_bottleneck`), attends and runs
`num_feedforward_networks` feed-forward blocks at that width, then widens back. Normalisation is either LayerNorm or
`NoNorm` (an element-wise affine map); word vectors of `embedding_size` (with their two neighbours when
`trigram_input`) are projected to `hidden_size`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import check_kwargs
from ..layers import (attention, expand_head_mask, merge_heads, output_flags, padding_mask,
                      split_heads)
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutputWithPooling, pack
from .bert import (BertAttention, BertIntermediate, BertModel, BertPredictionHeadTransform, BertPreTrainingHeads,
                   WordEmbeddings)

NORMALIZATION_TYPES = ("no_norm", "layer_norm")


class MobileBertConfig(PretrainedConfig):
    model_type = "mobilebert"
    defaults = dict(vocab_size=30522, hidden_size=512, num_hidden_layers=24, num_attention_heads=4,
                    intermediate_size=512, hidden_act="relu", hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                    initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0, embedding_size=128,
                    trigram_input=True, use_bottleneck=True, intra_bottleneck_size=128,
                    use_bottleneck_attention=False, key_query_shared_bottleneck=True, num_feedforward_networks=4,
                    normalization_type="no_norm", classifier_activation=True, classifier_dropout=None,
                    tie_word_embeddings=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ConfigError(f"normalization_type={self.normalization_type!r} is not one of {NORMALIZATION_TYPES}.")
        # the width attention and the feed-forward blocks run at
        self.true_hidden_size = self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size


class NoNorm(nn.Module):
    """MobileBERT's cheap stand-in for LayerNorm: x * weight + bias, no statistics."""

    def __init__(self, size: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(size))
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x):
        return x * self.weight + self.bias


def norm(config, size: int, eps: bool = True) -> nn.Module:
    """The config's normalisation over `size` features. The embeddings and each layer's output LayerNorm take
    torch's default eps (1e-5), not layer_norm_eps, as in the original checkpoints' code."""
    if config.normalization_type == "no_norm":
        return NoNorm(size)
    return nn.LayerNorm(size, eps=config.layer_norm_eps) if eps else nn.LayerNorm(size)


class MobileBertEmbeddings(nn.Module):
    """Word vectors (with their right and left neighbours when trigram_input) projected to hidden_size, plus
    position and token-type embeddings, then the normalisation."""

    def __init__(self, config):
        super().__init__()
        self.trigram_input, self.embedding_size, self.hidden_size = (config.trigram_input, config.embedding_size,
                                                                     config.hidden_size)
        self.project = config.trigram_input or config.embedding_size != config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        width = config.embedding_size * (3 if config.trigram_input else 1)
        self.embedding_transformation = nn.Linear(width, config.hidden_size)
        self.LayerNorm = norm(config, config.hidden_size, eps=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if self.trigram_input:  # (batch, seq, 3 * embedding_size): next token, this one, previous (zeros at the ends)
            following = F.pad(inputs_embeds[:, 1:], (0, 0, 0, 1))
            preceding = F.pad(inputs_embeds[:, :-1], (0, 0, 1, 0))
            inputs_embeds = torch.cat([following, inputs_embeds, preceding], dim=2)
        if self.project:
            inputs_embeds = self.embedding_transformation(inputs_embeds)
        seq = inputs_embeds.shape[1]
        positions = (self.position_embeddings.weight[:seq] if position_ids is None
                     else self.position_embeddings(position_ids))
        types = (self.token_type_embeddings.weight[0] if token_type_ids is None
                 else self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(inputs_embeds + positions + types))


class MobileBertSelfAttention(nn.Module):
    """Multi-head attention at true_hidden_size; values come from the wide hidden state unless
    use_bottleneck_attention."""

    def __init__(self, config):
        super().__init__()
        if config.true_hidden_size % config.num_attention_heads:
            raise ConfigError(f"The attention width {config.true_hidden_size} (intra_bottleneck_size, or hidden_size "
                              f"without use_bottleneck) must be a multiple of num_attention_heads.")
        self.num_attention_heads = config.num_attention_heads
        width = self.all_head_size = config.true_hidden_size  # all_head_size: less once pruned
        self.attention_head_size = width // self.num_attention_heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width if config.use_bottleneck_attention else config.hidden_size, width)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)  # its p is read by `attention` in training

    def forward(self, query, key, value, mask=None, want_weights=False, head_mask=None):
        q, k, v = (split_heads(proj(x), self.num_attention_heads)  # (batch, heads, seq, head_dim)
                   for proj, x in ((self.query, query), (self.key, key), (self.value, value)))
        out, weights = attention(q, k, v, mask, dropout_p=self.dropout.p if self.training else 0.0,
                                 want_weights=want_weights, head_mask=head_mask)
        return merge_heads(out), weights  # (batch, seq, true_hidden_size)


class ResidualNorm(nn.Module):
    """dense, dropout (when `dropout`), residual add, normalisation: the output step of most sub-blocks."""

    def __init__(self, config, in_size: int, out_size: int, dropout: bool = True, eps: bool = True):
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.LayerNorm = norm(config, out_size, eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout else 0.0)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class MobileBertSelfOutput(ResidualNorm):
    def __init__(self, config):
        width = config.true_hidden_size
        super().__init__(config, width, width, dropout=not config.use_bottleneck)
        self.use_bottleneck = config.use_bottleneck


class MobileBertAttention(BertAttention):
    """BERT's attention block at true_hidden_size, taking queries, keys and values as separate inputs."""

    self_class, output_class = MobileBertSelfAttention, MobileBertSelfOutput

    def forward(self, query, key, value, layer_input, mask=None, want_weights=False, head_mask=None):
        out, weights = self.self(query, key, value, mask, want_weights, head_mask)
        return self.output(out, layer_input), weights


class MobileBertIntermediate(BertIntermediate):
    def __init__(self, config):
        super().__init__(config, in_size=config.true_hidden_size)


class OutputBottleneck(ResidualNorm):
    """Widens the block's output back to hidden_size around the layer's input."""

    def __init__(self, config):
        super().__init__(config, config.true_hidden_size, config.hidden_size)


class MobileBertOutput(nn.Module):
    """The last feed-forward block's down projection, then (with the bottleneck) the widening `bottleneck`."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.true_hidden_size)
        self.LayerNorm = norm(config, config.true_hidden_size, eps=False)
        self.use_bottleneck = config.use_bottleneck
        if config.use_bottleneck:
            self.bottleneck = OutputBottleneck(config)
        else:
            self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual, layer_input):
        hidden = self.dense(hidden)
        if not hasattr(self, "bottleneck"):
            return self.LayerNorm(self.dropout(hidden) + residual)
        return self.bottleneck(self.LayerNorm(hidden + residual), layer_input)


class BottleneckLayer(nn.Module):
    """hidden_size -> intra_bottleneck_size, normalised."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intra_bottleneck_size)
        self.LayerNorm = norm(config, config.intra_bottleneck_size)

    def forward(self, hidden):
        return self.LayerNorm(self.dense(hidden))


class Bottleneck(nn.Module):
    """The narrowed inputs of a layer -> (query, key, value, residual of the attention block)."""

    def __init__(self, config):
        super().__init__()
        self.use_bottleneck_attention = config.use_bottleneck_attention
        self.key_query_shared_bottleneck = config.key_query_shared_bottleneck
        self.input = BottleneckLayer(config)
        if config.key_query_shared_bottleneck:
            self.attention = BottleneckLayer(config)

    def forward(self, hidden):
        narrow = self.input(hidden)
        if self.use_bottleneck_attention:
            return narrow, narrow, narrow, narrow
        if hasattr(self, "attention"):  # queries and keys share their own narrowing; values stay wide
            shared = self.attention(hidden)
            return shared, shared, hidden, narrow
        return hidden, hidden, hidden, narrow


class FFNOutput(ResidualNorm):
    def __init__(self, config):
        super().__init__(config, config.intermediate_size, config.true_hidden_size, dropout=False)


class FFNLayer(nn.Module):
    """One of the extra feed-forward blocks run before the layer's last one."""

    def __init__(self, config):
        super().__init__()
        self.intermediate = MobileBertIntermediate(config)
        self.output = FFNOutput(config)

    def forward(self, hidden):
        return self.output(self.intermediate(hidden), hidden)


class MobileBertLayer(nn.Module):
    """Bottleneck in, attention, num_feedforward_networks feed-forward blocks, bottleneck out."""

    def __init__(self, config):
        super().__init__()
        self.use_bottleneck, self.num_feedforward_networks = config.use_bottleneck, config.num_feedforward_networks
        self.attention = MobileBertAttention(config)
        self.intermediate = MobileBertIntermediate(config)
        self.output = MobileBertOutput(config)
        if config.use_bottleneck:
            self.bottleneck = Bottleneck(config)
        if config.num_feedforward_networks > 1:
            self.ffn = nn.ModuleList([FFNLayer(config) for _ in range(config.num_feedforward_networks - 1)])

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None):
        if hasattr(self, "bottleneck"):
            query, key, value, layer_input = self.bottleneck(hidden)
        else:
            query = key = value = layer_input = hidden
        out, weights = self.attention(query, key, value, layer_input, mask, want_weights, head_mask)
        for block in getattr(self, "ffn", ()):
            out = block(out)
        return self.output(self.intermediate(out), out, hidden), weights


class MobileBertEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([MobileBertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden, mask=None, head_mask=None, want_weights=False):
        """-> (last hidden state, hidden states from the embeddings on, attention weights or Nones)."""
        states, weights = [hidden], []
        for layer, layer_head_mask in zip(self.layer, expand_head_mask(head_mask, len(self.layer), hidden.dtype)):
            hidden, w = layer(hidden, mask, want_weights, layer_head_mask)
            states.append(hidden)
            weights.append(w)
        return hidden, states, weights


class MobileBertPooler(nn.Module):
    """The first token, through tanh(dense(.)) when classifier_activation."""

    def __init__(self, config):
        super().__init__()
        self.do_activate = config.classifier_activation
        if config.classifier_activation:
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        first = hidden[:, 0]
        return torch.tanh(self.dense(first)) if hasattr(self, "dense") else first


class MobileBertLMPredictionHead(nn.Module):
    """Transform, then the vocabulary scores: the first embedding_size features meet the (tied) `decoder` weight,
    the remaining hidden_size - embedding_size features meet `dense` (stored vocabulary-major)."""

    def __init__(self, config):
        super().__init__()
        self.transform = MobileBertPredictionHeadTransform(config)
        self.dense = nn.Linear(config.vocab_size, config.hidden_size - config.embedding_size, bias=False)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        weight = torch.cat([self.decoder.weight.t(), self.dense.weight], dim=0)  # (hidden_size, vocab)
        return self.transform(hidden) @ weight + self.decoder.bias


class MobileBertPredictionHeadTransform(BertPredictionHeadTransform):
    """dense, activation, LayerNorm (a LayerNorm whatever normalization_type says), as BERT's."""


class MobileBertPreTrainingHeads(BertPreTrainingHeads):
    """`cls` of the heads, as BERT's, with MobileBERT's masked-LM head."""

    prediction_head_class = MobileBertLMPredictionHead


class MobileBertPreTrainedModel(PreTrainedModel):
    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, NoNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, MobileBertLMPredictionHead):
            module.bias.zero_()


class MobileBertModel(WordEmbeddings, MobileBertPreTrainedModel):
    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = MobileBertEmbeddings(config)
        self.encoder = MobileBertEncoder(config)
        self.pooler = MobileBertPooler(config) if add_pooling_layer else None
        self.post_init()

    _prune_heads = BertModel._prune_heads

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        # the task heads pass the cross-attention and cache arguments of decoders as None
        check_kwargs(self, {k: v for k, v in kwargs.items() if v is not None})
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        mask = padding_mask(attention_mask, hidden.dtype)  # None when nothing is padded
        hidden, states, weights = self.encoder(hidden, mask, head_mask, want_weights)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return pack(BaseModelOutputWithPooling, return_dict, self.config, last_hidden_state=hidden,
                    pooler_output=pooled, hidden_states=tuple(states) if want_hidden else None,
                    attentions=tuple(weights) if want_weights else None)
