"""Marian (opus-mt translation models): BART's post-norm blocks with fixed sinusoidal positions, no embedding
LayerNorm, and source/target embeddings that are shared or separate (`share_encoder_decoder_embeddings`)."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration import PretrainedConfig
from ..layers import sinusoidal_table
from .bart import (BART_ATTRIBUTE_MAP, BART_DEFAULTS, BartDecoder, BartEncoder, BartForCausalLM,
                   BartForConditionalGeneration, BartLearnedPositionalEmbedding, BartModel, BartPreTrainedModel)


class MarianConfig(PretrainedConfig):
    model_type = "marian"
    attribute_map = BART_ATTRIBUTE_MAP
    defaults = dict(BART_DEFAULTS, vocab_size=58101, decoder_vocab_size=None, decoder_start_token_id=58100,
                    pad_token_id=58100, eos_token_id=0, bos_token_id=None, forced_eos_token_id=0,
                    share_encoder_decoder_embeddings=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.decoder_vocab_size = self.decoder_vocab_size or self.vocab_size


class MarianSinusoidalPositionalEmbedding(BartLearnedPositionalEmbedding):
    """Fixed sine/cosine positions (`layers.sinusoidal_table`), frozen; filled in by `_init_weights`."""

    offset = 0

    def __init__(self, num_positions: int, embedding_dim: int, padding_idx: int | None = None):
        nn.Embedding.__init__(self, num_positions, embedding_dim, _freeze=True)


class MarianPreTrainedModel(BartPreTrainedModel):
    config_class = MarianConfig
    embedding_norm, scaled_word_embeddings = False, False
    position_class = MarianSinusoidalPositionalEmbedding
    # the position tables are computed, so checkpoints may leave them out
    _keys_to_ignore_on_load_missing = (r"embed_positions\.weight$", r"^final_logits_bias$")

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, MarianSinusoidalPositionalEmbedding):
            module.weight.copy_(sinusoidal_table(*module.weight.shape))


class MarianEncoder(MarianPreTrainedModel, BartEncoder):
    pass


class MarianDecoder(MarianPreTrainedModel, BartDecoder):
    pass


class MarianModel(MarianPreTrainedModel, BartModel):
    """Shared token embeddings (`shared`) when config.share_encoder_decoder_embeddings, else one per stack (the
    decoder's of size decoder_vocab_size)."""

    encoder_class, decoder_class = MarianEncoder, MarianDecoder
    shift_inputs = False

    @property
    def _tied_weights_keys(self):
        return BartModel._tied_weights_keys if self.config.share_encoder_decoder_embeddings else {}

    def __init__(self, config):
        MarianPreTrainedModel.__init__(self, config)
        if config.share_encoder_decoder_embeddings:
            self.shared = self.word_embeddings(config, config.vocab_size)
        self.encoder = self.encoder_class(config)
        self.decoder = self.decoder_class(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value):
        if self.config.share_encoder_decoder_embeddings:
            self.shared = self.decoder.embed_tokens = value
        self.encoder.embed_tokens = value

    def get_decoder_input_embeddings(self):
        if self.config.share_encoder_decoder_embeddings:
            raise ValueError("The decoder shares the encoder's embeddings (share_encoder_decoder_embeddings=True); "
                             "use get_input_embeddings().")
        return self.decoder.embed_tokens

    def set_decoder_input_embeddings(self, value):
        if self.config.share_encoder_decoder_embeddings:
            raise ValueError("The decoder shares the encoder's embeddings (share_encoder_decoder_embeddings=True); "
                             "use set_input_embeddings().")
        self.decoder.embed_tokens = value


class MarianMTModel(MarianPreTrainedModel, BartForConditionalGeneration):
    """Translation model; the head is tied to the decoder's embeddings. Saved checkpoints leave out the position
    tables, as those of Transformers do."""

    base_class = MarianModel

    @property
    def _tied_weights_keys(self):
        shared = self.config.share_encoder_decoder_embeddings
        return {"lm_head.weight": "model.shared.weight" if shared else "model.decoder.embed_tokens.weight"}

    def save_pretrained(self, save_directory, state_dict=None, **kwargs):
        state = state_dict if state_dict is not None else self.state_dict()
        state = {k: v for k, v in state.items() if not k.endswith("embed_positions.weight")}
        super().save_pretrained(save_directory, state_dict=state, **kwargs)


class MarianForCausalLM(MarianPreTrainedModel, BartForCausalLM):
    decoder_class = MarianDecoder
