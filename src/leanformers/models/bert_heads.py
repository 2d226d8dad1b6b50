"""BERT task heads: pre-training, masked LM, causal LM, next sentence, sequence/token classification, multiple
choice, question answering. The encoder they share lives in bert.py; the head logic in heads.py."""

from __future__ import annotations

from torch.nn import functional as F

from ..generation.utils import GenerationMixin
from ..heads import (CausalLM, EncoderHead, MaskedLM, MultipleChoice, OutputEmbeddings, QuestionAnswering,
                     SequenceClassification, TokenClassification)
from ..outputs import BertForPreTrainingOutput, NextSentencePredictorOutput
from .bert import BertConfig, BertModel, BertPreTrainedModel, BertPreTrainingHeads

__all__ = ["BertConfig", "BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM",
           "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForTokenClassification",
           "BertForMultipleChoice", "BertForQuestionAnswering"]


class ClsHead(EncoderHead):
    """Mixin of the heads of BERT and the families built like it (listed before the family's PreTrainedModel):
    `cls`, the family's `pretraining_heads_class` with the `cls_parts` (mlm, nsp), when they are set."""

    pretraining_heads_class = BertPreTrainingHeads
    cls_parts = None

    def add_head(self, config):
        if self.cls_parts:
            self.cls = self.pretraining_heads_class(config, *self.cls_parts)


class ClsLMHead(OutputEmbeddings, ClsHead):
    """Vocabulary scores from `cls.predictions`, whose decoder is the output embeddings (its bias follows)."""

    cls_parts = (True, False)
    lm_head_path, lm_bias_follows = "cls.predictions", True


class _BertHead(ClsHead, BertPreTrainedModel):
    """`bert` (pooled when `pooling`), and `cls` with the `cls_parts` (mlm, nsp) when they are set."""

    encoder_class = BertModel


class _BertLMBase(ClsLMHead, _BertHead):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}


class BertForPreTraining(_BertLMBase):
    pooling, cls_parts = True, (True, True)
    pretraining_output_class = BertForPreTrainingOutput

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, next_sentence_label=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        scores, relationship = self.cls(out.last_hidden_state, out.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = (F.cross_entropy(scores.view(-1, scores.shape[-1]), labels.view(-1))
                    + F.cross_entropy(relationship.view(-1, 2), next_sentence_label.view(-1)))
        return self.head_output(self.pretraining_output_class, locals(), out, loss=loss, prediction_logits=scores,
                                seq_relationship_logits=relationship)


class BertLMHeadModel(CausalLM, _BertLMBase, GenerationMixin):
    """Causal language model (set is_decoder=True); loss on labels shifted by one like Transformers."""


class BertForMaskedLM(MaskedLM, _BertLMBase):
    pass


class BertForNextSentencePrediction(_BertHead):
    pooling, cls_parts = True, (False, True)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        logits = self.cls(pooled=out.pooler_output)[1]
        loss = None if labels is None else F.cross_entropy(logits.view(-1, 2), labels.view(-1))
        return self.head_output(NextSentencePredictorOutput, locals(), out, loss=loss, logits=logits)


class BertForSequenceClassification(SequenceClassification, _BertHead):
    pass


class BertForTokenClassification(TokenClassification, _BertHead):
    pass


class BertForMultipleChoice(MultipleChoice, _BertHead):
    pass


class BertForQuestionAnswering(QuestionAnswering, _BertHead):
    pass
