"""Pegasus: pre-norm blocks (like mBART) with fixed sinusoidal positions and scaled embeddings (like Marian), a
LayerNorm after each stack and no embedding LayerNorm."""

from __future__ import annotations

from ..configuration import PretrainedConfig
from .bart import (BART_ATTRIBUTE_MAP, BART_DEFAULTS, BartDecoder, BartEncoder, BartForCausalLM,
                   BartForConditionalGeneration, BartModel)
from .marian import MarianPreTrainedModel, MarianSinusoidalPositionalEmbedding


class PegasusConfig(PretrainedConfig):
    model_type = "pegasus"
    attribute_map = BART_ATTRIBUTE_MAP
    defaults = dict(BART_DEFAULTS, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, forced_eos_token_id=1)


class PegasusSinusoidalPositionalEmbedding(MarianSinusoidalPositionalEmbedding):
    pass


class PegasusPreTrainedModel(MarianPreTrainedModel):
    config_class = PegasusConfig
    pre_norm = True
    position_class = PegasusSinusoidalPositionalEmbedding


class PegasusEncoder(PegasusPreTrainedModel, BartEncoder):
    pass


class PegasusDecoder(PegasusPreTrainedModel, BartDecoder):
    pass


class PegasusModel(PegasusPreTrainedModel, BartModel):
    encoder_class, decoder_class = PegasusEncoder, PegasusDecoder
    shift_inputs = False


class PegasusForConditionalGeneration(PegasusPreTrainedModel, BartForConditionalGeneration):
    base_class = PegasusModel


class PegasusForCausalLM(PegasusPreTrainedModel, BartForCausalLM):
    decoder_class = PegasusDecoder
