"""BERT task heads: pre-training, masked LM, causal LM, next sentence, sequence/token classification, multiple
choice, question answering. The encoder they share lives in bert.py; the head logic in heads.py."""

from __future__ import annotations

from torch.nn import functional as F

from ..generation.utils import GenerationMixin
from ..heads import (CausalLM, EncoderHead, MaskedLM, MultipleChoice, QuestionAnswering, SequenceClassification,
                     TokenClassification)
from ..outputs import BertForPreTrainingOutput, NextSentencePredictorOutput
from .bert import BertConfig, BertModel, BertPreTrainedModel, BertPreTrainingHeads

__all__ = ["BertConfig", "BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM",
           "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForTokenClassification",
           "BertForMultipleChoice", "BertForQuestionAnswering"]


class _BertHead(EncoderHead, BertPreTrainedModel):
    """`bert` (pooled when `pooling`), and `cls` with the `cls_parts` (mlm, nsp) when they are set."""

    encoder_class = BertModel
    cls_parts = None

    def add_head(self, config):
        if self.cls_parts:
            self.cls = BertPreTrainingHeads(config, *self.cls_parts)


class _BertLMBase(_BertHead):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}
    cls_parts = (True, False)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def lm_scores(self, hidden):
        return self.cls.predictions(hidden)


class BertForPreTraining(_BertLMBase):
    pooling, cls_parts = True, (True, True)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, next_sentence_label=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        scores, relationship = self.cls(out.last_hidden_state, out.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = (F.cross_entropy(scores.view(-1, scores.shape[-1]), labels.view(-1))
                    + F.cross_entropy(relationship.view(-1, 2), next_sentence_label.view(-1)))
        return self.head_output(BertForPreTrainingOutput, locals(), out, loss=loss, prediction_logits=scores,
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
