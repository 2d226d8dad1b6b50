"""DeBERTa task heads: masked LM (the legacy `cls.predictions` head or `lm_predictions.lm_head`), sequence
classification over the ContextPooler, token classification, question answering. The encoder is in deberta.py; the
shared head logic in heads.py."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module
from ..errors import ConfigError
from ..heads import EncoderHead, MaskedLM, QuestionAnswering, SequenceClassification, TokenClassification
from ..layers import activation, sequence_classification_loss
from ..outputs import SequenceClassifierOutput
from .bert import BertPredictionHeadTransform
from .deberta import DebertaConfig, DebertaModel, DebertaPreTrainedModel

__all__ = ["DebertaConfig", "DebertaModel", "DebertaForMaskedLM", "DebertaForSequenceClassification",
           "DebertaForTokenClassification", "DebertaForQuestionAnswering"]


def cls_dropout(config) -> nn.Dropout:
    """Dropout before a pooled classifier: cls_dropout, else hidden_dropout_prob."""
    value = getattr(config, "cls_dropout", None)
    return nn.Dropout(config.hidden_dropout_prob if value is None else value)


class ContextPooler(nn.Module):
    """dropout -> dense -> pooler_hidden_act over the first token."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = nn.Dropout(config.pooler_dropout)
        self.act = activation(config.pooler_hidden_act)

    def forward(self, hidden):
        return self.act(self.dense(self.dropout(hidden[:, 0])))


class LegacyPredictionHeadTransform(BertPredictionHeadTransform):
    """dense (hidden_size -> embedding_size) -> activation -> LayerNorm."""

    def __init__(self, config):
        width = getattr(config, "embedding_size", config.hidden_size)
        super().__init__(config, width)
        self.embedding_size = width


class LegacyLMPredictionHead(nn.Module):
    """`cls.predictions` (legacy=True): transform, then `decoder` (tied to the word embeddings, its bias to `bias`)."""

    def __init__(self, config):
        super().__init__()
        self.transform = LegacyPredictionHeadTransform(config)
        self.embedding_size = self.transform.embedding_size
        self.decoder = nn.Linear(self.embedding_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        return self.decoder(self.transform(hidden))


class LMPredictionHead(nn.Module):
    """`lm_predictions.lm_head` (legacy=False): dense -> activation -> LayerNorm, then the word embeddings
    (passed in) as the vocabulary projection, plus `bias`."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = activation_module(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden, word_embeddings):
        return F.linear(self.LayerNorm(self.transform_act_fn(self.dense(hidden))), word_embeddings.weight, self.bias)


class _DebertaHead(EncoderHead, DebertaPreTrainedModel):
    """The heads: the encoder at `deberta`; classifier dropout is hidden_dropout_prob."""

    encoder_class = DebertaModel

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, (LegacyLMPredictionHead, LMPredictionHead)):
            module.bias.zero_()

    def build_encoder(self, config):
        return self.encoder_class(config)

    def head_dropout(self, config):
        return nn.Dropout(config.hidden_dropout_prob)


class DebertaForMaskedLM(MaskedLM, _DebertaHead):
    """Vocabulary scores from `cls.predictions` (legacy=True, the default) or `lm_predictions.lm_head`."""

    _tied_weights_keys = {"cls.predictions.decoder.weight": "deberta.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}

    def add_head(self, config):
        self.legacy = config.legacy
        if config.legacy:
            self.cls = nn.ModuleDict({"predictions": LegacyLMPredictionHead(config)})
        else:
            self.lm_predictions = nn.ModuleDict({"lm_head": LMPredictionHead(config)})

    def tied_weight_pairs(self):
        return super().tied_weight_pairs() if self.config.legacy else {}

    def get_output_embeddings(self):
        return self.cls["predictions"].decoder if self.config.legacy else None

    def set_output_embeddings(self, new_embeddings):
        if not self.config.legacy:
            raise ConfigError("With legacy=False the vocabulary projection is the input embeddings; use "
                              "set_input_embeddings.")
        self.cls["predictions"].decoder = new_embeddings
        self.cls["predictions"].bias = new_embeddings.bias

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if not self.config.legacy:  # the vocabulary bias of lm_predictions follows the embeddings (new rows: 0)
            head = self.lm_predictions["lm_head"]
            size, keep = embeddings.weight.shape[0], min(embeddings.weight.shape[0], head.bias.shape[0])
            bias = head.bias.detach().new_zeros(size)
            bias[:keep] = head.bias.detach()[:keep]
            head.bias = nn.Parameter(bias)
        return embeddings

    def lm_scores(self, hidden):
        if self.config.legacy:
            return self.cls["predictions"](hidden)
        return self.lm_predictions["lm_head"](hidden, self.base_model.embeddings.word_embeddings)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.masked_lm_output(locals())


def deberta_sequence_loss(config, logits, labels):
    """-> (loss, logits). With problem_type set, the usual losses. Unset, DeBERTa's own (problem_type stays unset):
    one label -> MSE on the flattened logits (returned flattened); integer class labels -> cross-entropy over the
    rows whose label is >= 0; label distributions (batch, num_labels) -> soft-target cross-entropy."""
    if config.problem_type is not None:
        return sequence_classification_loss(config, logits, labels), logits
    num_labels = logits.shape[-1]
    if num_labels == 1:
        logits = logits.view(-1).to(labels.dtype)
        return F.mse_loss(logits, labels.view(-1)), logits
    if labels.dim() == 1 or labels.shape[-1] == 1:
        labels = labels.view(-1).long()
        kept = labels >= 0
        if not bool(kept.any()):
            return torch.tensor(0).to(logits), logits
        return F.cross_entropy(logits[kept].view(-1, num_labels).float(), labels[kept]), logits
    return -(F.log_softmax(logits, dim=-1) * labels).sum(-1).mean(), logits


class DebertaForSequenceClassification(SequenceClassification, _DebertaHead):
    """`pooler` (ContextPooler), dropout (cls_dropout, else hidden_dropout_prob) and a linear `classifier`."""

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.pooler = ContextPooler(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.dropout = cls_dropout(config)

    def sequence_logits(self, out):
        return self.classifier(self.dropout(self.pooler(out.last_hidden_state)))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        logits, loss = self.sequence_logits(out), None
        if labels is not None:
            loss, logits = deberta_sequence_loss(self.config, logits, labels)
        return self.head_output(SequenceClassifierOutput, locals(), out, loss=loss, logits=logits)


class DebertaForTokenClassification(TokenClassification, _DebertaHead):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.token_output(locals())


class DebertaForQuestionAnswering(QuestionAnswering, _DebertaHead):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        return self.span_output(locals())
