"""XLM task heads: sequence classification and multiple choice (through a sequence summary), token classification,
span question answering (`qa_outputs` linear) and beam SQuAD question answering (`qa_outputs` SQuAD head). The
encoder is in xlm.py, the SQuAD head in squad_heads.py, the head logic in heads.py."""

from __future__ import annotations

import warnings

from torch import nn

from ..heads import EncoderHead, MultipleChoice, QuestionAnswering, SequenceClassification, TokenClassification
from ..outputs import ModelOutput
from .squad_heads import SequenceSummary, SQuADHead, squad_fields
from .xlm import XLMConfig, XLMModel, XLMPreTrainedModel, XLMWithLMHeadModel

__all__ = ["XLMConfig", "XLMModel", "XLMWithLMHeadModel", "XLMForSequenceClassification",
           "XLMForTokenClassification", "XLMForMultipleChoice", "XLMForQuestionAnsweringSimple",
           "XLMForQuestionAnswering", "XLMForQuestionAnsweringOutput"]

XLM_ARGS = ("input_ids", "attention_mask", "langs", "token_type_ids", "position_ids", "lengths", "cache",
            "inputs_embeds", "output_attentions", "output_hidden_states", "head_mask")
_CHOICE_ARGS = ("input_ids", "attention_mask", "langs", "token_type_ids", "position_ids", "inputs_embeds")


class XLMForQuestionAnsweringOutput(ModelOutput):
    """The SQuAD head's loss or beams (see squad_heads.SquadHeadOutput), with the encoder's hidden states and
    attention weights."""

    loss: object = None
    start_top_log_probs: object = None
    start_top_index: object = None
    end_top_log_probs: object = None
    end_top_index: object = None
    cls_logits: object = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class XLMHead(EncoderHead):
    """`transformer` (the family's `encoder_class`) and the head's layers; forward() arguments are XLM's."""

    encoder_class = XLMModel

    def build_encoder(self, config):
        return self.encoder_class(config)

    def head_dropout(self, config):
        return nn.Dropout(config.dropout)

    def encode(self, args: dict):
        return self.transformer(**{k: args[k] for k in XLM_ARGS if k in args}, return_dict=True,
                                **args.get("kwargs", {}))


class XLMForSequenceClassification(SequenceClassification, XLMHead, XLMPreTrainedModel):
    """One label (or score) per sequence from `sequence_summary` (by default the first token, projected)."""

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.sequence_summary = SequenceSummary(config)

    def sequence_logits(self, out):
        return self.sequence_summary(out.last_hidden_state)

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, head_mask=None, **kwargs):
        return self.sequence_output(locals())


class XLMForTokenClassification(TokenClassification, XLMHead, XLMPreTrainedModel):
    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, head_mask=None, **kwargs):
        return self.token_output(locals())


class XLMForMultipleChoice(MultipleChoice, XLMHead, XLMPreTrainedModel):
    """Inputs (batch, num_choices, seq); one score per choice: `sequence_summary` then `logits_proj`."""

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.sequence_summary = SequenceSummary(config)
        self.logits_proj = nn.Linear(config.num_labels, 1)

    def choice_logits(self, out):
        return self.logits_proj(self.sequence_summary(out.last_hidden_state))

    def encode(self, args: dict):
        # langs are per choice too; choice_output flattened only the inputs every encoder takes
        langs = args.get("langs")
        return super().encode({**args, "langs": None if langs is None else langs.reshape(-1, langs.shape[-1])})

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, head_mask=None, **kwargs):
        if lengths is not None:
            warnings.warn("lengths cannot be used with multiple choice (one length per choice is ambiguous): it is "
                          "ignored; pass an attention_mask instead.", UserWarning, stacklevel=2)
            lengths = None
        return self.choice_output(locals())


class XLMForQuestionAnsweringSimple(QuestionAnswering, XLMHead, XLMPreTrainedModel):
    """Start and end logits of an answer span from the linear `qa_outputs`."""

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, start_positions=None, end_positions=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, head_mask=None, **kwargs):
        return self.span_output(locals())


class XLMForQuestionAnswering(XLMHead, XLMPreTrainedModel):
    """Beam SQuAD answers from `qa_outputs` (start logits, end logits per start, answerability): the top
    start_n_top x end_n_top spans at inference, the span loss (plus the answerability loss) with labels."""

    output_class = XLMForQuestionAnsweringOutput

    def add_head(self, config):
        self.qa_outputs = SQuADHead(config)

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, start_positions=None, end_positions=None,
                is_impossible=None, cls_index=None, p_mask=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None, **kwargs):
        args = locals()
        out = self.encode(args)
        head = self.qa_outputs
        fields = squad_fields(head, out.last_hidden_state, head.start_n_top, head.end_n_top, start_positions,
                              end_positions, cls_index, is_impossible, p_mask)
        return self.head_output(self.output_class, args, out, **fields)

