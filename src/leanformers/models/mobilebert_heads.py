"""MobileBERT task heads: pre-training, masked LM, next sentence, sequence/token classification, multiple choice,
question answering. The encoder lives in mobilebert.py; the head logic in heads.py."""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from ..heads import (EncoderHead, MaskedLM, MultipleChoice, QuestionAnswering, SequenceClassification,
                     TokenClassification)
from ..outputs import ModelOutput, Tensor
from ..resizing import _new_rows_init, _resized_rows
from .bert_heads import BertForNextSentencePrediction
from .mobilebert import MobileBertConfig, MobileBertModel, MobileBertPreTrainedModel, MobileBertPreTrainingHeads

__all__ = ["MobileBertConfig", "MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM",
           "MobileBertForNextSentencePrediction", "MobileBertForSequenceClassification",
           "MobileBertForTokenClassification", "MobileBertForMultipleChoice", "MobileBertForQuestionAnswering"]


class MobileBertForPreTrainingOutput(ModelOutput):
    loss: Tensor | None = None
    prediction_logits: Tensor = None
    seq_relationship_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class _MobileBertHead(EncoderHead, MobileBertPreTrainedModel):
    """`mobilebert` (pooled when `pooling`), and `cls` with the `cls_parts` (mlm, nsp) when they are set."""

    encoder_class = MobileBertModel
    cls_parts = None

    def add_head(self, config):
        if self.cls_parts:
            self.cls = MobileBertPreTrainingHeads(config, *self.cls_parts)


class _MobileBertLMBase(_MobileBertHead):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "mobilebert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}
    cls_parts = (True, False)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        """Also resizes `cls.predictions.dense`, whose weight holds one column per vocabulary entry."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        dense = self.cls.predictions.dense
        size = embeddings.num_embeddings
        if dense.in_features != size:
            columns = dense.weight.data.t()  # (vocab, hidden_size - embedding_size)
            dense.weight = nn.Parameter(_resized_rows(columns, size, _new_rows_init(self, columns, mean_resizing)).t())
            dense.in_features = size
        return embeddings

    def lm_scores(self, hidden):
        return self.cls.predictions(hidden)


class MobileBertForPreTraining(_MobileBertLMBase):
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
        return self.head_output(MobileBertForPreTrainingOutput, locals(), out, loss=loss, prediction_logits=scores,
                                seq_relationship_logits=relationship)


class MobileBertForMaskedLM(MaskedLM, _MobileBertLMBase):
    pass


class MobileBertForNextSentencePrediction(_MobileBertHead):
    pooling, cls_parts = True, (False, True)
    forward = BertForNextSentencePrediction.forward


class MobileBertForSequenceClassification(SequenceClassification, _MobileBertHead):
    pass


class MobileBertForTokenClassification(TokenClassification, _MobileBertHead):
    pass


class MobileBertForMultipleChoice(MultipleChoice, _MobileBertHead):
    pass


class MobileBertForQuestionAnswering(QuestionAnswering, _MobileBertHead):
    pass
