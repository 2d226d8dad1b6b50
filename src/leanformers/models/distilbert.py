"""DistilBERT: the config, the six-layer distilled encoder and its task heads.

Attribute paths are the checkpoint keys (`distilbert.transformer.layer.0.attention.q_lin.weight`, `vocab_projector`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import (EncoderHead, MaskedLM, MultipleChoice, QuestionAnswering, SequenceClassification,
                     TokenClassification)
from ..activations import activation_module, prune_attention_heads
from ..chunking import apply_in_chunks
from ..layers import attention, expand_head_mask, merge_heads, padding_mask, split_heads
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutput, pack
from .bert import WordEmbeddings


class DistilBertConfig(PretrainedConfig):
    model_type = "distilbert"
    attribute_map = {"hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers"}
    defaults = dict(vocab_size=30522, max_position_embeddings=512, sinusoidal_pos_embds=False, n_layers=6,
                    n_heads=12, dim=768, hidden_dim=4 * 768, dropout=0.1, attention_dropout=0.1, activation="gelu",
                    initializer_range=0.02, qa_dropout=0.1, seq_classif_dropout=0.2, pad_token_id=0)


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim): sin on even columns, cos on odd ones, frequency 10000^(-2*(j//2)/dim), in float64."""
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]
    rates = torch.pow(10000.0, -2.0 * (torch.arange(dim, dtype=torch.float64) // 2) / dim)
    angles = positions * rates
    return torch.where(torch.arange(dim) % 2 == 0, angles.sin(), angles.cos()).float()


class DistilBertEmbeddings(nn.Module):
    """Word + position embeddings, then LayerNorm (no token types)."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.position_embeddings.sinusoidal = bool(config.sinusoidal_pos_embds)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids=None, inputs_embeds=None, position_ids=None):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            seq = inputs_embeds.shape[1]
            if not torch.jit.is_tracing() and seq > self.position_embeddings.num_embeddings:  # traced: a tensor
                raise ValueError(f"Sequence of {seq} positions is longer than max_position_embeddings="
                                 f"{self.position_embeddings.num_embeddings}; truncate the input.")
            positions = self.position_embeddings.weight[:seq]
        else:
            positions = self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(inputs_embeds + positions))


class DistilBertSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        if config.dim % config.n_heads:
            raise ConfigError(f"dim={config.dim} is not a multiple of n_heads={config.n_heads}; change one of them.")
        self.n_heads, self.dim = config.n_heads, config.dim  # dim: n_heads * attention_head_size, less once pruned
        self.attention_head_size = config.dim // config.n_heads
        self.q_lin = nn.Linear(config.dim, config.dim)
        self.k_lin = nn.Linear(config.dim, config.dim)
        self.v_lin = nn.Linear(config.dim, config.dim)
        self.out_lin = nn.Linear(config.dim, config.dim)
        self.dropout = nn.Dropout(config.attention_dropout)  # its p is read by `attention` in training
        self.pruned_heads = set()

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_attention_heads(self, self, heads, ("q_lin", "k_lin", "v_lin"), self, "out_lin", "n_heads", "dim")

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None):
        q, k, v = (split_heads(lin(hidden), self.n_heads) for lin in (self.q_lin, self.k_lin, self.v_lin))
        out, weights = attention(q, k, v, mask, dropout_p=self.dropout.p if self.training else 0.0,
                                 want_weights=want_weights, head_mask=head_mask)  # (batch, heads, seq, head_dim)
        return self.out_lin(merge_heads(out)), weights


class DistilBertFFN(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.activation = activation_module(config.activation)
        self.dropout = nn.Dropout(config.dropout)
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1

    def forward(self, hidden):
        return apply_in_chunks(self.ff_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)

    def ff_chunk(self, hidden):
        return self.dropout(self.lin2(self.activation(self.lin1(hidden))))


class DistilBertBlock(nn.Module):
    """Attention and feed-forward, each followed by a residual add and LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.ffn = DistilBertFFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None):
        attended, weights = self.attention(hidden, mask, want_weights, head_mask)
        attended = self.sa_layer_norm(attended + hidden)
        return self.output_layer_norm(self.ffn(attended) + attended), weights


class DistilBertTransformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_layers = config.n_layers
        self.layer = nn.ModuleList([DistilBertBlock(config) for _ in range(config.n_layers)])

    def forward(self, hidden, mask=None, head_mask=None, output_attentions=False, output_hidden_states=False):
        states, weights = [hidden], []
        for block, block_head_mask in zip(self.layer, expand_head_mask(head_mask, len(self.layer), hidden.dtype)):
            hidden, w = block(hidden, mask, output_attentions, block_head_mask)
            states.append(hidden)
            weights.append(w)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=tuple(states) if output_hidden_states else None,
                               attentions=tuple(weights) if output_attentions else None)


class DistilBertPreTrainedModel(PreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if getattr(module, "sinusoidal", False):
            module.weight.copy_(sinusoidal_table(*module.weight.shape))


class DistilBertModel(WordEmbeddings, DistilBertPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.embeddings = DistilBertEmbeddings(config)
        self.transformer = DistilBertTransformer(config)
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.transformer.layer[layer].attention.prune_heads(heads)

    def get_position_embeddings(self) -> nn.Embedding:
        return self.embeddings.position_embeddings

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, position_ids=None,
                token_type_ids=None):
        # token_type_ids: DistilBERT has no segment embeddings; accepted (a BERT tokenizer returns them) and unused
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        config = self.config
        hidden = self.embeddings(input_ids, inputs_embeds, position_ids)
        out = self.transformer(hidden, padding_mask(attention_mask, hidden.dtype), head_mask,
                               output_attentions if output_attentions is not None else config.output_attentions,
                               output_hidden_states if output_hidden_states is not None
                               else config.output_hidden_states)
        return pack(BaseModelOutput, return_dict, config, **out)


class _DistilBertHead(EncoderHead, DistilBertPreTrainedModel):
    """DistilBERT's heads: the encoder at `distilbert` (no pooler), and `get_position_embeddings`."""

    def build_encoder(self, config):
        return DistilBertModel(config)

    def head_dropout(self, config):
        return nn.Dropout(config.dropout)

    def get_position_embeddings(self) -> nn.Embedding:
        return self.distilbert.get_position_embeddings()


class DistilBertForMaskedLM(MaskedLM, _DistilBertHead):
    _tied_weights_keys = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}

    def add_head(self, config):
        self.activation = activation_module(config.activation)
        self.vocab_transform = nn.Linear(config.dim, config.dim)
        self.vocab_layer_norm = nn.LayerNorm(config.dim, eps=1e-12)
        self.vocab_projector = nn.Linear(config.dim, config.vocab_size)

    def get_output_embeddings(self):
        return self.vocab_projector

    def set_output_embeddings(self, new_embeddings):
        self.vocab_projector = new_embeddings

    def lm_scores(self, hidden):
        return self.vocab_projector(self.vocab_layer_norm(self.activation(self.vocab_transform(hidden))))

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, position_ids=None,
                token_type_ids=None):
        return self.masked_lm_output(locals())


class _PooledHead:
    """Listed first among a head's bases: first token -> pre_classifier -> ReLU -> dropout -> classifier."""

    out_features = None  # None: config.num_labels

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, self.out_features or config.num_labels)
        self.dropout = nn.Dropout(config.seq_classif_dropout)

    def sequence_logits(self, out):
        pooled = F.relu(self.pre_classifier(out.last_hidden_state[:, 0]))
        return self.classifier(self.dropout(pooled))

    choice_logits = sequence_logits


class DistilBertForSequenceClassification(_PooledHead, SequenceClassification, _DistilBertHead):
    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, position_ids=None,
                token_type_ids=None):
        return self.sequence_output(locals())


class DistilBertForMultipleChoice(_PooledHead, MultipleChoice, _DistilBertHead):
    """Inputs are (batch, num_choices, seq); one score per choice."""

    out_features = 1

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, position_ids=None,
                token_type_ids=None):
        return self.choice_output(locals())


class DistilBertForTokenClassification(TokenClassification, _DistilBertHead):
    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, position_ids=None,
                token_type_ids=None):
        return self.token_output(locals())


class DistilBertForQuestionAnswering(QuestionAnswering, _DistilBertHead):
    def __init__(self, config):
        if config.num_labels != 2:
            raise ConfigError(f"DistilBertForQuestionAnswering needs num_labels=2 (start, end), got "
                              f"{config.num_labels}; drop num_labels from the config.")
        super().__init__(config)

    def add_head(self, config):
        super().add_head(config)
        self.dropout = nn.Dropout(config.qa_dropout)

    def span_features(self, out):
        return self.dropout(out.last_hidden_state)

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, start_positions=None,
                end_positions=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                position_ids=None, token_type_ids=None):
        return self.span_output(locals())


__all__ = ["DistilBertConfig", "DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
           "DistilBertForMultipleChoice", "DistilBertForTokenClassification", "DistilBertForQuestionAnswering",
           "sinusoidal_table"]
