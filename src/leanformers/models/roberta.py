"""RoBERTa, XLM-RoBERTa and CamemBERT: BERT layers with padding-aware position ids and their own heads.

The three share every module and weight name (`roberta.encoder.layer.0...`, `lm_head.decoder`); XLM-RoBERTa and
CamemBERT differ only in their config defaults, `model_type` and class names.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..layers import causal_lm_loss, sequence_classification_loss, span_loss
from ..outputs import (CausalLMOutputWithCrossAttentions, MaskedLMOutput, MultipleChoiceModelOutput,
                       QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput, extras, pack)
from .bert import BertConfig, BertEmbeddings, BertEncoder, BertModel, BertPooler, BertPreTrainedModel

logger = logging.getLogger("leanformers")


class RobertaConfig(PretrainedConfig):
    model_type = "roberta"
    defaults = dict(BertConfig.defaults, vocab_size=50265, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                    is_decoder=False, add_cross_attention=False, tie_word_embeddings=True)


class XLMRobertaConfig(RobertaConfig):
    model_type = "xlm-roberta"
    defaults = dict(RobertaConfig.defaults, vocab_size=30522)


class CamembertConfig(RobertaConfig):
    model_type = "camembert"
    defaults = dict(RobertaConfig.defaults, vocab_size=30522)


def position_ids_from_input_ids(input_ids, padding_idx: int, past_length: int = 0):
    """Non-padding tokens count up from padding_idx + 1; padding tokens keep position padding_idx (fairseq style)."""
    keep = input_ids.ne(padding_idx).int()
    return ((torch.cumsum(keep, dim=1) + past_length) * keep).long() + padding_idx


class RobertaEmbeddings(BertEmbeddings):
    """BERT embeddings whose default positions skip padding and start at padding_idx + 1."""

    def __init__(self, config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=self.padding_idx)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, past_length=0):
        if position_ids is None:
            if input_ids is not None:
                position_ids = position_ids_from_input_ids(input_ids, self.padding_idx, past_length)
            else:  # embeddings alone cannot tell padding apart: number every position
                batch, seq = inputs_embeds.shape[:2]
                start = self.padding_idx + 1
                position_ids = torch.arange(start, start + seq, device=inputs_embeds.device).expand(batch, seq)
        return super().forward(input_ids, token_type_ids, position_ids, inputs_embeds)


class RobertaLMHead(nn.Module):
    """dense -> gelu -> layer_norm -> vocabulary projection (weight tied to the word embeddings, bias to `bias`)."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        return self.decoder(self.layer_norm(F.gelu(self.dense(hidden))))


class RobertaClassificationHead(nn.Module):
    """Sentence classifier on the first token (<s>): dropout, dense, tanh, dropout, out_proj."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden):
        x = self.dropout(torch.tanh(self.dense(self.dropout(hidden[:, 0]))))
        return self.out_proj(x)


class RobertaPreTrainedModel(BertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, RobertaLMHead):
            module.bias.zero_()


class RobertaModel(RobertaPreTrainedModel):
    """The bare encoder (or decoder with is_decoder=True); the same computation as BertModel."""

    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"position_embedding_type={config.position_embedding_type!r} is not supported; only "
                              f"'absolute' position embeddings are implemented.")
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    get_input_embeddings = BertModel.get_input_embeddings
    set_input_embeddings = BertModel.set_input_embeddings
    forward = BertModel.forward


class _RobertaLMBase(RobertaPreTrainedModel):
    _tied_weights_keys = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                          "lm_head.decoder.bias": "lm_head.bias"}

    def __init__(self, config):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new_embeddings):
        self.lm_head.decoder = new_embeddings


class RobertaForCausalLM(_RobertaLMBase):
    """Causal language model (set is_decoder=True); the loss predicts each next token."""

    def __init__(self, config):
        if not config.is_decoder:
            logger.warning(f"{type(self).__name__} is meant to run as a decoder: set is_decoder=True in the config.")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           encoder_hidden_states, encoder_attention_mask, past_key_values,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return pack(CausalLMOutputWithCrossAttentions, return_dict, self.config, loss=loss, logits=logits,
                    cross_attentions=out.cross_attentions, **extras(out))


class RobertaForMaskedLM(_RobertaLMBase):
    def __init__(self, config):
        if config.is_decoder:
            logger.warning(f"{type(self).__name__} attends in both directions only with is_decoder=False.")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           encoder_hidden_states, encoder_attention_mask, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1))
        return pack(MaskedLMOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class RobertaForSequenceClassification(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.classifier(out.last_hidden_state)
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return pack(SequenceClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class RobertaForMultipleChoice(RobertaPreTrainedModel):
    """Inputs are (batch, num_choices, seq); one score per choice from its pooled output."""

    def __init__(self, config):
        super().__init__(config)
        self.roberta = RobertaModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    # the argument order is RoBERTa's own (token_type_ids before attention_mask), kept for positional callers
    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None, position_ids=None,
                head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        flat = [None if t is None else t.flatten(0, 1)  # (batch, choices, ...) -> (batch * choices, ...)
                for t in (input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)]
        out = self.roberta(*flat[:4], head_mask, flat[4], output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return pack(MultipleChoiceModelOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class RobertaForTokenClassification(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return pack(TokenClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class RobertaForQuestionAnswering(RobertaPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.roberta(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        start, end = (t.squeeze(-1).contiguous() for t in self.qa_outputs(out.last_hidden_state).split(1, dim=-1))
        loss = span_loss(start, end, start_positions, end_positions)
        return pack(QuestionAnsweringModelOutput, return_dict, self.config, loss=loss, start_logits=start,
                    end_logits=end, **extras(out))


# ---------------------------------------------------------------------- XLM-RoBERTa and CamemBERT
def _renamed(base, prefix: str, config_class):
    """`base` under another family's name and config class; modules and weight names are unchanged."""
    name = base.__name__.replace("Roberta", prefix, 1)
    return type(name, (base,), {"config_class": config_class, "__module__": __name__, "__qualname__": name,
                                "__doc__": base.__doc__})


XLMRobertaPreTrainedModel = _renamed(RobertaPreTrainedModel, "XLMRoberta", XLMRobertaConfig)
XLMRobertaModel = _renamed(RobertaModel, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForCausalLM = _renamed(RobertaForCausalLM, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForMaskedLM = _renamed(RobertaForMaskedLM, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForSequenceClassification = _renamed(RobertaForSequenceClassification, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForMultipleChoice = _renamed(RobertaForMultipleChoice, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForTokenClassification = _renamed(RobertaForTokenClassification, "XLMRoberta", XLMRobertaConfig)
XLMRobertaForQuestionAnswering = _renamed(RobertaForQuestionAnswering, "XLMRoberta", XLMRobertaConfig)

CamembertPreTrainedModel = _renamed(RobertaPreTrainedModel, "Camembert", CamembertConfig)
CamembertModel = _renamed(RobertaModel, "Camembert", CamembertConfig)
CamembertForCausalLM = _renamed(RobertaForCausalLM, "Camembert", CamembertConfig)
CamembertForMaskedLM = _renamed(RobertaForMaskedLM, "Camembert", CamembertConfig)
CamembertForSequenceClassification = _renamed(RobertaForSequenceClassification, "Camembert", CamembertConfig)
CamembertForMultipleChoice = _renamed(RobertaForMultipleChoice, "Camembert", CamembertConfig)
CamembertForTokenClassification = _renamed(RobertaForTokenClassification, "Camembert", CamembertConfig)
CamembertForQuestionAnswering = _renamed(RobertaForQuestionAnswering, "Camembert", CamembertConfig)
