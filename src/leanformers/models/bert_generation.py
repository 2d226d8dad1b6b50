"""BertGeneration: BERT layers without token types or pooler, as the encoder (`BertGenerationEncoder`) or the
decoder (`BertGenerationDecoder`, is_decoder=True, usually add_cross_attention=True, with a key/value cache) of an
encoder-decoder model. Attribute paths are checkpoint keys (`bert.encoder.layer.0...`, `lm_head.decoder`)."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration import PretrainedConfig
from ..generation.utils import GenerationMixin
from ..heads import OutputEmbeddings, check_kwargs, finish
from ..layers import causal_lm_loss, keep_last_logits
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions, pack
from .bert import BertEncoder, BertModel, WordEmbeddings, decoder_cache, run_encoder


class BertGenerationConfig(PretrainedConfig):
    model_type = "bert-generation"
    defaults = dict(vocab_size=50358, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                    intermediate_size=4096, hidden_act="gelu", hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, initializer_range=0.02,
                    layer_norm_eps=1e-12, pad_token_id=0, bos_token_id=2, eos_token_id=1, use_cache=True,
                    is_decoder=False, add_cross_attention=False, tie_word_embeddings=True)


class BertGenerationEmbeddings(nn.Module):
    """Word + position embeddings, then LayerNorm (no token types)."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, position_ids=None, inputs_embeds=None, past_length=0):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        positions = (self.position_embeddings.weight[past_length:past_length + inputs_embeds.shape[1]]
                     if position_ids is None else self.position_embeddings(position_ids))
        return self.dropout(self.LayerNorm(inputs_embeds + positions))


class BertGenerationOnlyLMHead(nn.Module):
    """The vocabulary projection (weight tied to the word embeddings, bias to `bias`)."""

    def __init__(self, config):
        super().__init__()
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        return self.decoder(hidden)


class BertGenerationPreTrainedModel(PreTrainedModel):
    config_class = BertGenerationConfig
    base_model_prefix = "bert"
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertGenerationOnlyLMHead):
            module.bias.zero_()


class BertGenerationEncoder(WordEmbeddings, BertGenerationPreTrainedModel):
    """The bare stack: bidirectional, or causal (cross-attending, with a key/value cache) as a decoder."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = BertGenerationEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.post_init()

    _prune_heads = BertModel._prune_heads

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        cache = decoder_cache(self.config, input_ids, inputs_embeds, past_key_values, use_cache,
                              encoder_hidden_states)
        past = cache.get_seq_length() if cache is not None else 0
        hidden = self.embeddings(input_ids, position_ids, inputs_embeds, past_length=past)
        out = run_encoder(self, hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                          output_attentions, output_hidden_states, cache)
        return pack(BaseModelOutputWithPastAndCrossAttentions, return_dict, self.config,
                    last_hidden_state=out.last_hidden_state, past_key_values=cache, hidden_states=out.hidden_states,
                    attentions=out.attentions, cross_attentions=out.cross_attentions)


class BertGenerationDecoder(OutputEmbeddings, BertGenerationPreTrainedModel, GenerationMixin):
    """BertGenerationEncoder run as a decoder, with a language-model head; the loss predicts each next token."""

    _tied_weights_keys = {"lm_head.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "lm_head.decoder.bias": "lm_head.bias"}
    lm_bias_follows = True

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertGenerationEncoder(config)
        self.lm_head = BertGenerationOnlyLMHead(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, labels=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                logits_to_keep=0, **kwargs):
        num_items = kwargs.pop("num_items_in_batch", None)
        out = self.bert(input_ids, attention_mask, position_ids, head_mask, inputs_embeds, encoder_hidden_states,
                        encoder_attention_mask, past_key_values, use_cache=False if labels is not None else use_cache,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                        return_dict=True, **kwargs)
        logits = self.lm_head(keep_last_logits(out.last_hidden_state, logits_to_keep))
        loss = None if labels is None else causal_lm_loss(logits, labels, num_items)
        return finish(CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict, self.config)
