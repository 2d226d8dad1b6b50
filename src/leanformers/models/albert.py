"""ALBERT: factorised embeddings (embedding_size -> hidden_size) and transformer layers shared across groups."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import (EncoderHead, MaskedLM, MultipleChoice, QuestionAnswering, SequenceClassification,
                     TokenClassification, head_dropout_prob)
from ..activations import activation_module, prune_attention_heads
from ..chunking import apply_in_chunks
from ..layers import expand_head_mask, padding_mask
from ..outputs import AlbertForPreTrainingOutput, BaseModelOutputWithPooling, pack
from .bert import BertEmbeddings, BertPreTrainedModel, BertSelfAttention, WordEmbeddings


class AlbertConfig(PretrainedConfig):
    model_type = "albert"
    defaults = dict(
        vocab_size=30000, embedding_size=128, hidden_size=4096, num_hidden_layers=12, num_hidden_groups=1,
        num_attention_heads=64, intermediate_size=16384, inner_group_num=1, hidden_act="gelu_new",
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512, type_vocab_size=2,
        initializer_range=0.02, layer_norm_eps=1e-12, classifier_dropout_prob=0.1, pad_token_id=0, bos_token_id=2,
        eos_token_id=3, tie_word_embeddings=True,
    )


class AlbertEmbeddings(BertEmbeddings):
    """BERT embeddings of width `embedding_size` (projected up to hidden_size by the encoder)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config, width=config.embedding_size)


class AlbertAttention(BertSelfAttention):
    """Self-attention with its output projection and post-residual LayerNorm in one module (ALBERT's layout)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.hidden_size = config.hidden_size
        self.attention_dropout = self._modules.pop("dropout")  # ALBERT's name for the attention-weights dropout
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pruned_heads = set()

    @property
    def dropout(self):  # what BertSelfAttention.forward reads
        return self.attention_dropout

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_attention_heads(self, self, heads, ("query", "key", "value"), self)

    def forward(self, hidden, mask=None, head_mask=None, want_weights=False):
        out, weights = super().forward(hidden, mask, want_weights, head_mask)  # (batch, seq, hidden)
        return self.LayerNorm(hidden + self.output_dropout(self.dense(out))), weights


class AlbertLayer(nn.Module):
    """Attention, then a feed-forward block (ffn -> activation -> ffn_output) with a residual LayerNorm."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = activation_module(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)  # declared as in ALBERT, which applies none here
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1

    def forward(self, hidden, mask=None, head_mask=None, want_weights=False):
        hidden, weights = self.attention(hidden, mask, head_mask, want_weights)
        ffn = apply_in_chunks(self.ff_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)
        return self.full_layer_layer_norm(ffn + hidden), weights

    def ff_chunk(self, hidden):
        return self.ffn_output(self.activation(self.ffn(hidden)))


class AlbertLayerGroup(nn.Module):
    """`inner_group_num` layers applied in order; a group's weights are reused by every layer it serves."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.albert_layers = nn.ModuleList([AlbertLayer(config) for _ in range(config.inner_group_num)])


class AlbertTransformer(nn.Module):
    """Projects embeddings to hidden_size, then runs num_hidden_layers steps over num_hidden_groups shared groups."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList([AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)])

    def forward(self, hidden, mask=None, head_mask=None, want_weights=False, want_hidden=False):
        """-> (last hidden state, every layer's hidden state or None, attention weights or None)."""
        config = self.config
        hidden = self.embedding_hidden_mapping_in(hidden)
        all_hidden = [hidden] if want_hidden else None
        all_weights = [] if want_weights else None
        heads = expand_head_mask(head_mask, config.num_hidden_layers, hidden.dtype)
        per_group = config.num_hidden_layers // config.num_hidden_groups
        for i in range(config.num_hidden_layers):
            group = int(i / (config.num_hidden_layers / config.num_hidden_groups))
            # Within a group, the inner layer j reads row group * per_group + j of the head mask, as ALBERT always did.
            for j, layer in enumerate(self.albert_layer_groups[group].albert_layers):
                hidden, weights = layer(hidden, mask, _group_head_mask(heads, group * per_group, j, per_group),
                                        want_weights)
                if want_hidden:
                    all_hidden.append(hidden)
                if want_weights:
                    all_weights.append(weights)
        return hidden, _tuple(all_hidden), _tuple(all_weights)


def _group_head_mask(heads, start, inner, per_group):
    if heads[0] is None:
        return None
    if inner >= per_group:
        raise ConfigError(f"head_mask cannot be applied when inner_group_num exceeds the {per_group} layer(s) per "
                          f"group; leave head_mask unset or change num_hidden_groups.")
    return heads[start + inner]


def _tuple(items):
    return tuple(items) if items is not None else None


class AlbertMLMHead(nn.Module):
    """hidden -> embedding_size (activation, LayerNorm) -> vocabulary scores; decoder tied to the input embeddings."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)
        self.activation = activation_module(config.hidden_act)

    def forward(self, hidden):
        return self.decoder(self.LayerNorm(self.activation(self.dense(hidden))))


class AlbertPreTrainedModel(BertPreTrainedModel):
    config_class = AlbertConfig
    base_model_prefix = "albert"
    lm_head_class = AlbertMLMHead


class AlbertModel(WordEmbeddings, AlbertPreTrainedModel):
    """The bare encoder: embeddings, shared-layer transformer and (optionally) a tanh pooler over the first token."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = AlbertEmbeddings(config)
        self.encoder = AlbertTransformer(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.pooler_activation = nn.Tanh() if add_pooling_layer else None
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        """Layer numbers count the layers of every group in turn (inner_group_num per group)."""
        for layer, heads in heads_to_prune.items():
            group, inner = divmod(int(layer), self.config.inner_group_num)
            self.encoder.albert_layer_groups[group].albert_layers[inner].attention.prune_heads(heads)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        config = self.config
        want_weights = output_attentions if output_attentions is not None else config.output_attentions
        want_hidden = output_hidden_states if output_hidden_states is not None else config.output_hidden_states
        embedded = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        mask = padding_mask(attention_mask, embedded.dtype)
        last, hidden_states, attentions = self.encoder(embedded, mask, head_mask, want_weights, want_hidden)
        pooled = self.pooler_activation(self.pooler(last[:, 0])) if self.pooler is not None else None
        return pack(BaseModelOutputWithPooling, return_dict, config, last_hidden_state=last, pooler_output=pooled,
                    hidden_states=hidden_states, attentions=attentions)


class AlbertSOPHead(nn.Module):
    """Sentence-order prediction from the pooled output."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled):
        return self.classifier(self.dropout(pooled))


class _AlbertHead(EncoderHead, AlbertPreTrainedModel):
    encoder_class = AlbertModel

    def head_dropout(self, config):
        return nn.Dropout(head_dropout_prob(config, "classifier_dropout_prob"))


class _AlbertLMBase(_AlbertHead):
    _tied_weights_keys = {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
                          "predictions.decoder.bias": "predictions.bias"}

    def add_head(self, config):
        self.predictions = AlbertMLMHead(config)

    def get_output_embeddings(self):
        return self.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.predictions.decoder = new_embeddings
        self.predictions.bias = new_embeddings.bias

    def lm_scores(self, hidden):
        return self.predictions(hidden)


class AlbertForPreTraining(_AlbertLMBase):
    """Masked-LM head plus the sentence-order head; the loss is their sum when both labels are given."""

    pooling = True

    def add_head(self, config):
        super().add_head(config)
        self.sop_classifier = AlbertSOPHead(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, sentence_order_label=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        scores = self.predictions(out.last_hidden_state)
        sop = self.sop_classifier(out.pooler_output)
        loss = None
        if labels is not None and sentence_order_label is not None:
            loss = (F.cross_entropy(scores.view(-1, self.config.vocab_size), labels.view(-1))
                    + F.cross_entropy(sop.view(-1, 2), sentence_order_label.view(-1)))
        return self.head_output(AlbertForPreTrainingOutput, locals(), out, loss=loss, prediction_logits=scores,
                                sop_logits=sop)


class AlbertForMaskedLM(MaskedLM, _AlbertLMBase):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        return self.masked_lm_output(locals())


class AlbertForSequenceClassification(SequenceClassification, _AlbertHead):
    pass


class AlbertForTokenClassification(TokenClassification, _AlbertHead):
    pass


class AlbertForMultipleChoice(MultipleChoice, _AlbertHead):
    """Inputs are (batch, num_choices, seq); one score per choice from its pooled output."""


class AlbertForQuestionAnswering(QuestionAnswering, _AlbertHead):
    pass
