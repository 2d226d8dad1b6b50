"""Longformer task heads: masked LM, sequence and token classification, multiple choice, question answering.

Like Transformers, the heads put global attention where the task needs it when no `global_attention_mask` is given:
on `<s>` for sequence classification, on the question (the tokens before the first separator) for question
answering, and on the tokens after the second separator for multiple choice.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..heads import (ClassificationHead, EncoderHead, MaskedLM, MultipleChoice, OutputEmbeddings, QuestionAnswering,
                     SequenceClassification, TokenClassification, check_kwargs)
from ..outputs import extras, pack
from . import longformer
from .longformer import LongformerConfig, LongformerLMHead, LongformerModel, LongformerPreTrainedModel

__all__ = ["LongformerConfig", "LongformerModel", "LongformerForMaskedLM", "LongformerForSequenceClassification",
           "LongformerForTokenClassification", "LongformerForMultipleChoice", "LongformerForQuestionAnswering"]

logger = logging.getLogger("leanformers")

_BASE_ARGS = ("input_ids", "attention_mask", "global_attention_mask", "token_type_ids", "position_ids",
              "inputs_embeds", "output_attentions", "output_hidden_states")


def question_global_mask(input_ids, sep_token_id: int, before: bool = True):
    """(batch, seq) bool global attention for question answering: the tokens before the first separator
    (`before`), else those after the second one. Each row must hold exactly three separators
    (`<s> question </s></s> context </s>`)."""
    rows, columns = (input_ids == sep_token_id).nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=input_ids.shape[0])
    if not bool((counts == 3).all()):
        raise ValueError(f"Placing global attention on the question needs exactly three separator tokens (id "
                         f"{sep_token_id}) in every row; the rows hold {counts.tolist()}. Pass global_attention_mask "
                         f"yourself for other layouts.")
    end = columns.view(-1, 3)[:, :1]  # (batch, 1): the first separator of each row
    position = torch.arange(input_ids.shape[1], device=input_ids.device)
    return position < end if before else position > end + 1


class LongformerClassificationHead(ClassificationHead):
    """dropout, dense, tanh, dropout, out_proj over the first token (<s>); dropout is hidden_dropout_prob."""

    def __init__(self, config):
        super().__init__(config.hidden_size, config.hidden_size, config.num_labels, config.hidden_dropout_prob)

    def forward(self, hidden):
        return super().forward(hidden[:, 0])


class _LongformerHead(EncoderHead, LongformerPreTrainedModel):
    """The encoder at `longformer`; outputs carry the global attention weights too."""

    encoder_class = LongformerModel

    def head_dropout(self, config):
        return nn.Dropout(config.hidden_dropout_prob)

    def encode(self, args: dict):
        check_kwargs(self, args["kwargs"])
        return self.base_model(**{k: args[k] for k in _BASE_ARGS if k in args}, return_dict=True)

    def head_output(self, output_cls, args: dict, out, **fields):
        output_cls = getattr(longformer, "Longformer" + output_cls.__name__)  # e.g. LongformerMaskedLMOutput
        return pack(output_cls, args["return_dict"], self.config, **fields, **extras(out),
                    global_attentions=out.global_attentions)


class LongformerForMaskedLM(MaskedLM, OutputEmbeddings, _LongformerHead):
    _tied_weights_keys = {"lm_head.decoder.weight": "longformer.embeddings.word_embeddings.weight",
                          "lm_head.decoder.bias": "lm_head.bias"}

    def add_head(self, config):
        self.lm_head = LongformerLMHead(config)

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        return self.masked_lm_output(locals())


class LongformerForSequenceClassification(SequenceClassification, _LongformerHead):
    """Classifies from <s>, which gets global attention unless `global_attention_mask` says otherwise."""

    classifier_class = LongformerClassificationHead

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        if global_attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
            device = (input_ids if input_ids is not None else inputs_embeds).device
            global_attention_mask = torch.zeros(shape, dtype=torch.long, device=device)
            global_attention_mask[:, 0] = 1
        return self.sequence_output(locals())


class LongformerForTokenClassification(TokenClassification, _LongformerHead):
    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        return self.token_output(locals())


class LongformerForMultipleChoice(MultipleChoice, _LongformerHead):
    """Inputs are (batch, num_choices, seq); by default the tokens after the second separator of each choice get
    global attention."""

    # the argument order is Transformers' own (token_type_ids before attention_mask), kept for positional callers
    def forward(self, input_ids=None, token_type_ids=None, attention_mask=None, global_attention_mask=None,
                labels=None, position_ids=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        if global_attention_mask is None and input_ids is not None:
            global_attention_mask = question_global_mask(input_ids.flatten(0, 1), self.config.sep_token_id, False)
        elif global_attention_mask is not None:
            global_attention_mask = global_attention_mask.flatten(0, 1)  # (batch * num_choices, seq)
        return self.choice_output(locals())


class LongformerForQuestionAnswering(QuestionAnswering, _LongformerHead):
    """Span start and end logits; the question tokens get global attention unless `global_attention_mask` is
    given (input_ids `<s> question </s></s> context </s>`)."""

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, start_positions=None, end_positions=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        if global_attention_mask is None:
            if input_ids is None:
                logger.warning("No global attention: it is placed on the question from input_ids, and only "
                               "inputs_embeds was given; pass global_attention_mask to set it.")
            else:
                global_attention_mask = question_global_mask(input_ids, self.config.sep_token_id)
        return self.span_output(locals())
