"""XLNet task heads: sequence and token classification, multiple choice, span question answering and the SQuAD
beam-search head. Each output carries the base model's `mems` beside the hidden states and attentions."""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from ..layers import sequence_classification_loss, span_logits, span_loss, token_loss
from ..outputs import ModelOutput, Tensor
from .squad_heads import PoolerAnswerClass, PoolerEndLogits, PoolerStartLogits, SequenceSummary, squad_fields
from .xlnet import (XLNetConfig, XLNetLMHeadModel, XLNetLMHeadModelOutput, XLNetModel, XLNetModelOutput,
                    XLNetPreTrainedModel, head_output, run_transformer)

__all__ = ["XLNetConfig", "XLNetModel", "XLNetLMHeadModel", "XLNetForSequenceClassification",
           "XLNetForTokenClassification", "XLNetForMultipleChoice", "XLNetForQuestionAnsweringSimple",
           "XLNetForQuestionAnswering", "XLNetPreTrainedModel", "XLNetModelOutput", "XLNetLMHeadModelOutput",
           "XLNetForSequenceClassificationOutput", "XLNetForTokenClassificationOutput", "XLNetForMultipleChoiceOutput",
           "XLNetForQuestionAnsweringSimpleOutput", "XLNetForQuestionAnsweringOutput"]


class XLNetForSequenceClassificationOutput(ModelOutput):
    loss: Tensor | None = None
    logits: Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class XLNetForTokenClassificationOutput(XLNetForSequenceClassificationOutput):
    pass


class XLNetForMultipleChoiceOutput(XLNetForSequenceClassificationOutput):
    pass


class XLNetForQuestionAnsweringSimpleOutput(ModelOutput):
    loss: Tensor | None = None
    start_logits: Tensor = None
    end_logits: Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class XLNetForQuestionAnsweringOutput(ModelOutput):
    """The loss (with start and end positions) or the beams; the `*_log_probs` hold probabilities, as in
    Transformers."""

    loss: Tensor | None = None
    start_top_log_probs: Tensor | None = None
    start_top_index: Tensor | None = None
    end_top_log_probs: Tensor | None = None
    end_top_index: Tensor | None = None
    cls_logits: Tensor | None = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class _XLNetHead(XLNetPreTrainedModel):
    """Builds the base model at `transformer`, then the head's layers (`add_head`), then runs post_init."""

    def __init__(self, config: XLNetConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = XLNetModel(config)
        self.add_head(config)
        self.post_init()

    def add_head(self, config):
        """The head's own layers (each head defines them)."""


class XLNetForSequenceClassification(_XLNetHead):
    """A label (or score) per sequence from the summary of its last token (`sequence_summary`, `logits_proj`)."""

    def add_head(self, config):
        self.sequence_summary = SequenceSummary(config)
        self.logits_proj = nn.Linear(config.d_model, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, labels=None, use_mems=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = run_transformer(self, locals())
        logits = self.logits_proj(self.sequence_summary(out.last_hidden_state))
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return head_output(XLNetForSequenceClassificationOutput, out, return_dict, self.config, loss=loss,
                           logits=logits)


class XLNetForTokenClassification(_XLNetHead):
    """A label per token from a linear `classifier`."""

    def add_head(self, config):
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, labels=None, use_mems=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = run_transformer(self, locals())
        logits = self.classifier(out.last_hidden_state)
        return head_output(XLNetForTokenClassificationOutput, out, return_dict, self.config,
                           loss=token_loss(logits, labels), logits=logits)


class XLNetForMultipleChoice(_XLNetHead):
    """Inputs (batch, num_choices, seq); one score per choice from the summary of its last token."""

    def add_head(self, config):
        self.sequence_summary = SequenceSummary(config)
        self.logits_proj = nn.Linear(config.d_model, 1)

    def forward(self, input_ids=None, token_type_ids=None, input_mask=None, attention_mask=None, mems=None,
                perm_mask=None, target_mapping=None, inputs_embeds=None, labels=None, use_mems=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        args = dict(locals())
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        for name in ("input_ids", "token_type_ids", "input_mask", "attention_mask", "inputs_embeds"):
            if args[name] is not None:  # (batch, num_choices, seq, ...) -> (batch * num_choices, seq, ...)
                args[name] = args[name].reshape(-1, *args[name].shape[2:])
        out = run_transformer(self, args)
        logits = self.logits_proj(self.sequence_summary(out.last_hidden_state)).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels.view(-1))
        return head_output(XLNetForMultipleChoiceOutput, out, return_dict, self.config, loss=loss, logits=logits)


class XLNetForQuestionAnsweringSimple(_XLNetHead):
    """Start and end logits of an answer span from `qa_outputs` on every position."""

    def add_head(self, config):
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, start_positions=None, end_positions=None,
                use_mems=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = run_transformer(self, locals())
        start, end = span_logits(self.qa_outputs(out.last_hidden_state))
        return head_output(XLNetForQuestionAnsweringSimpleOutput, out, return_dict, self.config,
                           loss=span_loss(start, end, start_positions, end_positions), start_logits=start,
                           end_logits=end)


class XLNetForQuestionAnswering(_XLNetHead):
    """The SQuAD head: start logits, end logits given a start and the answerability (`cls_logits`); the
    `start_n_top` x `end_n_top` beams at inference, the span (+ answerability) loss with labels."""

    def add_head(self, config):
        self.start_n_top, self.end_n_top = config.start_n_top, config.end_n_top
        self.start_logits = PoolerStartLogits(config)
        self.end_logits = PoolerEndLogits(config)
        self.answer_class = PoolerAnswerClass(config)

    def forward(self, input_ids=None, attention_mask=None, mems=None, perm_mask=None, target_mapping=None,
                token_type_ids=None, input_mask=None, inputs_embeds=None, start_positions=None, end_positions=None,
                is_impossible=None, cls_index=None, p_mask=None, use_mems=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        out = run_transformer(self, locals())
        fields = squad_fields(self, out.last_hidden_state, self.start_n_top, self.end_n_top, start_positions,
                              end_positions, cls_index, is_impossible, p_mask)
        return head_output(XLNetForQuestionAnsweringOutput, out, return_dict, self.config, **fields)
