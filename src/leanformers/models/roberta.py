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
from ..generation.utils import GenerationMixin
from ..heads import (CausalLM, EncoderHead, FirstTokenClassifier, MaskedLM, MultipleChoice, OutputEmbeddings,
                     QuestionAnswering, SequenceClassification, TokenClassification)
from .bert import (BertConfig, BertEmbeddings, BertEncoder, BertModel, BertPooler, BertPreTrainedModel,
                   WordEmbeddings)

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


class RobertaClassificationHead(FirstTokenClassifier):
    """Sentence classifier on the first token (<s>): dropout, dense, tanh, dropout, out_proj."""


class RobertaPreTrainedModel(BertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    lm_head_class = RobertaLMHead


class RobertaModel(WordEmbeddings, RobertaPreTrainedModel):
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

    forward = BertModel.forward
    _prune_heads = BertModel._prune_heads


class _RobertaHead(EncoderHead, RobertaPreTrainedModel):
    encoder_class = RobertaModel


class _RobertaLMBase(OutputEmbeddings, _RobertaHead):
    _tied_weights_keys = {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                          "lm_head.decoder.bias": "lm_head.bias"}

    def add_head(self, config):
        self.lm_head = RobertaLMHead(config)


class RobertaForCausalLM(CausalLM, _RobertaLMBase, GenerationMixin):
    """Causal language model (set is_decoder=True); the loss predicts each next token."""

    def __init__(self, config):
        if not config.is_decoder:
            logger.warning(f"{type(self).__name__} is meant to run as a decoder: set is_decoder=True in the config.")
        super().__init__(config)


class RobertaForMaskedLM(MaskedLM, _RobertaLMBase):
    def __init__(self, config):
        if config.is_decoder:
            logger.warning(f"{type(self).__name__} attends in both directions only with is_decoder=False.")
        super().__init__(config)


class RobertaForSequenceClassification(SequenceClassification, _RobertaHead):
    classifier_class = RobertaClassificationHead


class RobertaForMultipleChoice(MultipleChoice, _RobertaHead):
    """Inputs are (batch, num_choices, seq); one score per choice from its pooled output."""

    def head_dropout(self, config):
        return nn.Dropout(config.hidden_dropout_prob)  # not classifier_dropout, as in RoBERTa's own head

    # the argument order is RoBERTa's own (token_type_ids before attention_mask), kept for positional callers
    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, labels=None, position_ids=None,
                head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        return self.choice_output(locals())


class RobertaForTokenClassification(TokenClassification, _RobertaHead):
    pass


class RobertaForQuestionAnswering(QuestionAnswering, _RobertaHead):
    pass


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
