"""ELECTRA: BERT layers over embeddings of width `embedding_size` (projected up when it differs from hidden_size).

The discriminator is `ElectraForPreTraining` (is each token replaced?), the generator `ElectraForMaskedLM`.
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..heads import (CausalLM, EncoderHead, FirstTokenClassifier, MaskedLM, MultipleChoice, QuestionAnswering,
                     SequenceClassification, SequenceSummary, TokenClassification)
from ..activations import activation_module
from ..outputs import BaseModelOutputWithPastAndCrossAttentions, ElectraForPreTrainingOutput, pack
from .bert import (BertEmbeddings, BertEncoder, BertModel, BertPreTrainedModel, WordEmbeddings, check_encoder_inputs,
                   run_encoder)

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
        self.activation = activation_module(config.hidden_act)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden):
        return self.dense_prediction(self.activation(self.dense(hidden))).squeeze(-1)  # (batch, seq)


class ElectraGeneratorPredictions(nn.Module):
    """hidden_size -> embedding_size (gelu, LayerNorm), ready for the vocabulary projection."""

    def __init__(self, config):
        super().__init__()
        self.activation = activation_module("gelu")
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)

    def forward(self, hidden):
        return self.LayerNorm(self.activation(self.dense(hidden)))


class ElectraClassificationHead(FirstTokenClassifier):
    """Sentence classifier on the first token: dropout, dense, gelu, dropout, out_proj."""

    def __init__(self, config):
        super().__init__(config, activation_module("gelu"))


class ElectraSequenceSummary(SequenceSummary):
    """One vector per sequence (`summary_type`: first, last, mean or cls_index), then optional projection,
    activation and dropouts, as the `summary_*` settings of the config say."""


class ElectraPreTrainedModel(BertPreTrainedModel):
    config_class = ElectraConfig
    base_model_prefix = "electra"


class ElectraModel(WordEmbeddings, ElectraPreTrainedModel):
    """Embeddings (projected to hidden_size when embedding_size differs) and the BERT encoder; no pooler."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = ElectraEmbeddings(config)
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = nn.Linear(config.embedding_size, config.hidden_size)
        self.encoder = BertEncoder(config)
        self.post_init()

    _prune_heads = BertModel._prune_heads

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        check_encoder_inputs(input_ids, inputs_embeds, past_key_values)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        if hasattr(self, "embeddings_project"):
            hidden = self.embeddings_project(hidden)
        out = run_encoder(self, hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                          output_attentions, output_hidden_states)
        return pack(BaseModelOutputWithPastAndCrossAttentions, return_dict, self.config,
                    last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states,
                    attentions=out.attentions, cross_attentions=out.cross_attentions)


class _ElectraHead(EncoderHead, ElectraPreTrainedModel):
    """ELECTRA's heads: the encoder at `electra` (it has no pooler)."""

    def build_encoder(self, config):
        return ElectraModel(config)


class ElectraForPreTraining(_ElectraHead):
    """The discriminator; labels are 1 for replaced tokens, and padding (attention_mask 0) is left out of the loss."""

    def add_head(self, config):
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.encode(locals())
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
        return self.head_output(ElectraForPreTrainingOutput, locals(), out, loss=loss, logits=logits)


class _ElectraGeneratorBase(_ElectraHead):
    _tied_weights_keys = {"generator_lm_head.weight": "electra.embeddings.word_embeddings.weight"}

    def add_head(self, config):
        self.generator_predictions = ElectraGeneratorPredictions(config)
        self.generator_lm_head = nn.Linear(config.embedding_size, config.vocab_size)

    def get_output_embeddings(self):
        return self.generator_lm_head

    def set_output_embeddings(self, new_embeddings):
        self.generator_lm_head = new_embeddings

    def lm_scores(self, hidden):
        return self.generator_lm_head(self.generator_predictions(hidden))


class ElectraForMaskedLM(MaskedLM, _ElectraGeneratorBase):
    """The generator: vocabulary scores for every position."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.masked_lm_output(locals())


class ElectraForCausalLM(CausalLM, _ElectraGeneratorBase):
    """The generator head used left to right (set is_decoder=True); the loss predicts each next token."""

    def __init__(self, config):
        if not config.is_decoder:
            logger.warning("ElectraForCausalLM is meant to run as a decoder: set is_decoder=True in the config.")
        super().__init__(config)


class ElectraForSequenceClassification(SequenceClassification, _ElectraHead):
    classifier_class = ElectraClassificationHead


class ElectraForMultipleChoice(MultipleChoice, _ElectraHead):
    """Inputs are (batch, num_choices, seq); one score per choice from its sequence summary."""

    def add_head(self, config):
        self.sequence_summary = ElectraSequenceSummary(config)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def choice_logits(self, out):
        return self.classifier(self.sequence_summary(out.last_hidden_state))


class ElectraForTokenClassification(TokenClassification, _ElectraHead):
    pass


class ElectraForQuestionAnswering(QuestionAnswering, _ElectraHead):
    pass
