"""ELECTRA: BERT layers over embeddings of width `embedding_size` (projected up when it differs from hidden_size).

The discriminator is `ElectraForPreTraining` (is each token replaced?), the generator `ElectraForMaskedLM`.
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..layers import (activation, additive_mask, causal_lm_loss, decoder_mask, padding_mask,
                      sequence_classification_loss, span_loss)
from ..outputs import (BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions,
                       ElectraForPreTrainingOutput, MaskedLMOutput, MultipleChoiceModelOutput,
                       QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput, extras, pack)
from .bert import BertEmbeddings, BertEncoder, BertPreTrainedModel

logger = logging.getLogger("leanformers")


class ElectraConfig(PretrainedConfig):
    model_type = "electra"
    defaults = dict(
        vocab_size=30522, embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4,
        intermediate_size=1024, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
        summary_type="first", summary_use_proj=True, summary_activation="gelu", summary_last_dropout=0.1,
        pad_token_id=0, use_cache=True, classifier_dropout=None, is_decoder=False, add_cross_attention=False,
        bos_token_id=None, eos_token_id=None, tie_word_embeddings=True,
    )


class ElectraEmbeddings(BertEmbeddings):
    """BERT embeddings of width `embedding_size`."""

    def __init__(self, config):
        super().__init__(config, width=config.embedding_size)


class ElectraDiscriminatorPredictions(nn.Module):
    """One logit per token: was it replaced by the generator?"""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = activation(config.hidden_act)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden):
        return self.dense_prediction(self.activation(self.dense(hidden))).squeeze(-1)  # (batch, seq)


class ElectraGeneratorPredictions(nn.Module):
    """hidden_size -> embedding_size (gelu, LayerNorm), ready for the vocabulary projection."""

    def __init__(self, config):
        super().__init__()
        self.activation = activation("gelu")
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)

    def forward(self, hidden):
        return self.LayerNorm(self.activation(self.dense(hidden)))


class ElectraClassificationHead(nn.Module):
    """Sentence classifier on the first token: dropout, dense, gelu, dropout, out_proj."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        dropout = config.classifier_dropout
        self.activation = activation("gelu")
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden):
        x = self.dropout(self.activation(self.dense(self.dropout(hidden[:, 0]))))
        return self.out_proj(x)


class ElectraSequenceSummary(nn.Module):
    """One vector per sequence (`summary_type`: first, last, mean or cls_index), then optional projection,
    activation and dropouts, as the `summary_*` settings of the config say."""

    def __init__(self, config):
        super().__init__()
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type not in ("first", "last", "mean", "cls_index"):
            raise NotImplementedError(f"summary_type={self.summary_type!r} is not implemented; use 'first', 'last', "
                                      f"'mean' or 'cls_index'.")
        self.summary = nn.Identity()
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = nn.Linear(config.hidden_size, config.num_labels if to_labels else config.hidden_size)
        name = getattr(config, "summary_activation", None)
        self.activation = activation(name) if name else nn.Identity()
        first, last = getattr(config, "summary_first_dropout", 0), getattr(config, "summary_last_dropout", 0)
        self.first_dropout = nn.Dropout(first) if first and first > 0 else nn.Identity()
        self.last_dropout = nn.Dropout(last) if last and last > 0 else nn.Identity()

    def forward(self, hidden, cls_index=None):
        if self.summary_type == "first":
            output = hidden[:, 0]
        elif self.summary_type == "mean":
            output = hidden.mean(dim=1)
        elif self.summary_type == "cls_index" and cls_index is not None:
            index = cls_index[..., None, None].expand(*cls_index.shape, 1, hidden.shape[-1])
            output = hidden.gather(-2, index).squeeze(-2)  # (batch, ..., hidden)
        else:  # "last", or "cls_index" without an index
            output = hidden[:, -1]
        return self.last_dropout(self.activation(self.summary(self.first_dropout(output))))


class ElectraPreTrainedModel(BertPreTrainedModel):
    config_class = ElectraConfig
    base_model_prefix = "electra"


class ElectraModel(ElectraPreTrainedModel):
    """Embeddings (projected to hidden_size when embedding_size differs) and the BERT encoder; no pooler."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = ElectraEmbeddings(config)
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = nn.Linear(config.embedding_size, config.hidden_size)
        self.encoder = BertEncoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if past_key_values is not None:
            raise NotImplementedError("past_key_values (incremental decoding) is not implemented for ELECTRA; pass "
                                      "the whole sequence instead.")
        config = self.config
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        if hasattr(self, "embeddings_project"):
            hidden = self.embeddings_project(hidden)
        mask, is_causal = _self_attention_mask(attention_mask, hidden, config.is_decoder)
        out = self.encoder(hidden, mask, head_mask,
                           output_attentions if output_attentions is not None else config.output_attentions,
                           output_hidden_states if output_hidden_states is not None else config.output_hidden_states,
                           encoder_hidden_states, padding_mask(encoder_attention_mask, hidden.dtype), is_causal)
        return pack(BaseModelOutputWithPastAndCrossAttentions, return_dict, config,
                    last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states,
                    attentions=out.attentions, cross_attentions=out.cross_attentions)


def _self_attention_mask(attention_mask, hidden, is_decoder: bool):
    """(additive mask or None, is_causal): padding only, or padding + causal for a decoder (as BertModel does)."""
    if not is_decoder:
        return padding_mask(attention_mask, hidden.dtype), False  # None when nothing is padded
    seq = hidden.shape[1]
    mask, is_causal = decoder_mask(attention_mask, seq, 0)
    return additive_mask(mask, False, seq, seq, hidden.dtype, hidden.device), is_causal


class ElectraForPreTraining(ElectraPreTrainedModel):
    """The discriminator; labels are 1 for replaced tokens, and padding (attention_mask 0) is left out of the loss."""

    def __init__(self, config):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.discriminator_predictions(out.last_hidden_state)
        loss = None
        if labels is not None:
            seq = out.last_hidden_state.shape[1]
            logits_2d = logits.view(-1, seq)
            if attention_mask is not None:
                active = attention_mask.view(-1, seq) == 1
                loss = F.binary_cross_entropy_with_logits(logits_2d[active], labels[active].float())
            else:
                loss = F.binary_cross_entropy_with_logits(logits_2d, labels.float())
        return pack(ElectraForPreTrainingOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class _ElectraGeneratorBase(ElectraPreTrainedModel):
    _tied_weights_keys = {"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"}

    def __init__(self, config):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.generator_predictions = ElectraGeneratorPredictions(config)
        self.generator_lm_head = nn.Linear(config.embedding_size, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self):
        return self.generator_lm_head

    def set_output_embeddings(self, new_embeddings):
        self.generator_lm_head = new_embeddings

    def _scores(self, hidden):
        return self.generator_lm_head(self.generator_predictions(hidden))


class ElectraForMaskedLM(_ElectraGeneratorBase):
    """The generator: vocabulary scores for every position."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self._scores(out.last_hidden_state)
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1))
        return pack(MaskedLMOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class ElectraForCausalLM(_ElectraGeneratorBase):
    """The generator head used left to right (set is_decoder=True); the loss predicts each next token."""

    def __init__(self, config):
        if not config.is_decoder:
            logger.warning("ElectraForCausalLM is meant to run as a decoder: set is_decoder=True in the config.")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           encoder_hidden_states, encoder_attention_mask, past_key_values,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self._scores(out.last_hidden_state)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return pack(CausalLMOutputWithCrossAttentions, return_dict, self.config, loss=loss, logits=logits,
                    cross_attentions=out.cross_attentions, **extras(out))


class ElectraForSequenceClassification(ElectraPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        self.classifier = ElectraClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.classifier(out.last_hidden_state)
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return pack(SequenceClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class ElectraForMultipleChoice(ElectraPreTrainedModel):
    """Inputs are (batch, num_choices, seq); one score per choice from its sequence summary."""

    def __init__(self, config):
        super().__init__(config)
        self.electra = ElectraModel(config)
        self.sequence_summary = ElectraSequenceSummary(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        flat = [None if t is None else t.flatten(0, 1)  # (batch, choices, ...) -> (batch * choices, ...)
                for t in (input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)]
        out = self.electra(*flat[:4], head_mask, flat[4], output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.classifier(self.sequence_summary(out.last_hidden_state)).view(-1, num_choices)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return pack(MultipleChoiceModelOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class ElectraForTokenClassification(ElectraPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return pack(TokenClassifierOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))


class ElectraForQuestionAnswering(ElectraPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.electra = ElectraModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           return_dict=True)
        start, end = (t.squeeze(-1).contiguous() for t in self.qa_outputs(out.last_hidden_state).split(1, dim=-1))
        loss = span_loss(start, end, start_positions, end_positions)
        return pack(QuestionAnsweringModelOutput, return_dict, self.config, loss=loss, start_logits=start,
                    end_logits=end, **extras(out))
