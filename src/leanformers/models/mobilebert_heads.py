"""MobileBERT task heads: pre-training, masked LM, next sentence, sequence/token classification, multiple choice,
question answering. The encoder lives in mobilebert.py; the head logic in heads.py."""

from __future__ import annotations

from torch import nn

from ..heads import MaskedLM, MultipleChoice, QuestionAnswering, SequenceClassification, TokenClassification
from ..outputs import ModelOutput, Tensor
from ..resizing import _new_rows_init, _resized_rows
from .bert_heads import BertForNextSentencePrediction, BertForPreTraining, ClsHead, ClsLMHead
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


class _MobileBertHead(ClsHead, MobileBertPreTrainedModel):
    """`mobilebert` (pooled when `pooling`), and `cls` with the `cls_parts` (mlm, nsp) when they are set."""

    encoder_class = MobileBertModel
    pretraining_heads_class = MobileBertPreTrainingHeads


class _MobileBertLMBase(ClsLMHead, _MobileBertHead):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "mobilebert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}

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


class MobileBertForPreTraining(_MobileBertLMBase):
    pooling, cls_parts = True, (True, True)
    pretraining_output_class = MobileBertForPreTrainingOutput
    forward = BertForPreTraining.forward


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
