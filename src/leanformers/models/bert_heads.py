"""BERT task heads: pre-training, masked LM, causal LM, next sentence, sequence/token classification, multiple
choice, question answering. The encoder they share lives in bert.py."""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from ..layers import causal_lm_loss, sequence_classification_loss, span_loss
from ..outputs import (BertForPreTrainingOutput, CausalLMOutputWithCrossAttentions, MaskedLMOutput,
                       MultipleChoiceModelOutput, NextSentencePredictorOutput, QuestionAnsweringModelOutput,
                       SequenceClassifierOutput, TokenClassifierOutput, extras, pack)
from .bert import BertConfig, BertModel, BertPreTrainedModel, BertPreTrainingHeads

__all__ = ["BertConfig", "BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM",
           "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForTokenClassification",
           "BertForMultipleChoice", "BertForQuestionAnswering"]

ENCODER_ARGS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds",
                "encoder_hidden_states", "encoder_attention_mask", "past_key_values", "output_attentions",
                "output_hidden_states")
CHOICE_ARGS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


class _BertHead(BertPreTrainedModel):
    """`bert` (pooled when `pooling`), `cls` with the `cls_parts` (mlm, nsp), and the layers of `add_head`."""

    pooling = True
    cls_parts = None

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=self.pooling)
        if self.cls_parts:
            self.cls = BertPreTrainingHeads(config, *self.cls_parts)
        self.add_head(config)
        self.post_init()

    def add_head(self, config):
        """Task layers other than `cls` (none by default)."""

    def encode(self, args: dict):
        """Run the encoder on the arguments of a head's forward (its `locals()`)."""
        return self.bert(**{k: args[k] for k in ENCODER_ARGS if k in args}, return_dict=True)


class _BertLMBase(_BertHead):
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}
    pooling, cls_parts = False, (True, False)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias


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
        return pack(BertForPreTrainingOutput, return_dict, self.config, loss=loss, prediction_logits=scores,
                    seq_relationship_logits=relationship, **extras(out))


class BertLMHeadModel(_BertLMBase):
    """Causal language model (set is_decoder=True); loss on labels shifted by one like Transformers."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.encode(locals())
        logits = self.cls(out.last_hidden_state)[0]
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return pack(CausalLMOutputWithCrossAttentions, return_dict, self.config, loss=loss, logits=logits,
                    cross_attentions=out.cross_attentions, **extras(out))


class BertForMaskedLM(_BertLMBase):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        logits = self.cls(out.last_hidden_state)[0]
        loss = None if labels is None else F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1))
        return pack(MaskedLMOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class BertForNextSentencePrediction(_BertHead):
    cls_parts = (False, True)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        logits = self.cls(pooled=out.pooler_output)[1]
        loss = None if labels is None else F.cross_entropy(logits.view(-1, 2), labels.view(-1))
        return pack(NextSentencePredictorOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class _BertClassifierBase(_BertHead):
    """Dropout and a linear `classifier` on the pooled output (or on every token when not `pooling`)."""

    out_features = None  # None: config.num_labels

    def add_head(self, config):
        self.num_labels = config.num_labels
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, self.out_features or config.num_labels)

    def _logits(self, args: dict):
        out = self.encode(args)
        features = out.pooler_output if self.pooling else out.last_hidden_state
        return self.classifier(self.dropout(features)), out


class BertForSequenceClassification(_BertClassifierBase):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        logits, out = self._logits(locals())
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return pack(SequenceClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class BertForTokenClassification(_BertClassifierBase):
    pooling = False

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        logits, out = self._logits(locals())
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return pack(TokenClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


def flatten_choices(args: dict) -> dict:
    """(batch, num_choices, ...) inputs -> (batch * num_choices, ...) for a multiple-choice head."""
    flat = {k: args[k].reshape(-1, *args[k].shape[2:]) for k in CHOICE_ARGS if args.get(k) is not None}
    return {**args, **flat}


class BertForMultipleChoice(_BertClassifierBase):
    """Inputs are (batch, num_choices, seq); one score per choice."""

    out_features = 1

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        logits, out = self._logits(flatten_choices(locals()))
        logits = logits.view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return pack(MultipleChoiceModelOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class BertForQuestionAnswering(_BertHead):
    pooling = False

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
        start, end = (t.squeeze(-1).contiguous() for t in self.qa_outputs(out.last_hidden_state).split(1, dim=-1))
        loss = span_loss(start, end, start_positions, end_positions)
        return pack(QuestionAnsweringModelOutput, return_dict, self.config, loss=loss, start_logits=start,
                    end_logits=end, **extras(out))
