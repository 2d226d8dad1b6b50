"""T5 (and v1.1 / Flan-T5: `feed_forward_proj="gated-gelu"`): a pre-norm encoder-decoder with RMS norms and unscaled
attention plus a relative-position bias. The first block of each stack owns the bias; it is added to the
padding/causal mask once per forward, and every self-attention gets the sum as one additive mask."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module, run_activation
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import check_kwargs, finish
from ..layers import (additive_mask, attention, cached_key_values, check_one_input, clamp_half_overflow,
                      few_rows_linear, merge_heads, nested_tied_pairs, output_flags, padding_mask,
                      relative_position_bias, reorder_self_attention, residual_block, rms_norm, run_encoder_decoder,
                      run_layers, seq2seq_cache, seq2seq_decoder_masks, seq2seq_model_args, span_logits, span_loss,
                      split_heads, token_loss)
from ..outputs import (BaseModelOutputWithPastAndCrossAttentions, Seq2SeqLMOutput, Seq2SeqModelOutput,
                       Seq2SeqQuestionAnsweringModelOutput, TokenClassifierOutput, seq2seq_output, stack_output)
from .bart import BartForSequenceClassification, BartPreTrainedModel


class T5Config(PretrainedConfig):
    """`scale_decoder_outputs` (multiply the decoder output by d_model**-0.5 before the head) defaults to
    `tie_word_embeddings`: original T5 ties and scales; v1.1 and Flan-T5 do neither."""

    model_type = "t5"
    attribute_map = {"hidden_size": "d_model", "num_attention_heads": "num_heads", "num_hidden_layers": "num_layers",
                     "head_dim": "d_kv"}
    defaults = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=None,
                    num_heads=8, relative_attention_num_buckets=32, relative_attention_max_distance=128,
                    dropout_rate=0.1, layer_norm_epsilon=1e-6, initializer_factor=1.0, feed_forward_proj="relu",
                    is_encoder_decoder=True, use_cache=True, pad_token_id=0, eos_token_id=1, classifier_dropout=0.0)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        parts = self.feed_forward_proj.split("-")
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
            raise ConfigError(f"feed_forward_proj={self.feed_forward_proj!r} is not valid; use 'ACT' or 'gated-ACT' "
                              f"(e.g. 'relu', 'gated-gelu').")
        self.is_gated_act = parts[0] == "gated"
        self.dense_act_fn = "gelu_new" if self.feed_forward_proj == "gated-gelu" else parts[-1]
        if "scale_decoder_outputs" not in kwargs:
            self.scale_decoder_outputs = kwargs.get("tie_word_embeddings") is not False


class T5LayerNorm(nn.Module):
    """RMS norm without bias or mean subtraction, computed in float32."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden):
        return rms_norm(hidden, self.weight, self.variance_epsilon)


class T5DenseActDense(nn.Module):
    """wo(act(wi x)); the gated variant (T5 v1.1) is wo(act(wi_0 x) * wi_1 x)."""

    def __init__(self, config: T5Config):
        super().__init__()
        self._inputs(config)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = activation_module(config.dense_act_fn)

    def _inputs(self, config):
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)

    def _inner(self, hidden):
        return run_activation(self.act, few_rows_linear(hidden, self.wi))

    def forward(self, hidden):
        hidden = self.dropout(self._inner(hidden))
        # wo may be kept in float32 under half precision (a quantized wo is not an nn.Linear: its weight is rebuilt
        # on every access, and it takes float32 anyway)
        dtype = self.wo.weight.dtype if isinstance(self.wo, nn.Linear) else hidden.dtype
        return few_rows_linear(hidden.to(dtype), self.wo)


class T5DenseGatedActDense(T5DenseActDense):
    def _inputs(self, config):
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)

    def _inner(self, hidden):
        gate, up = few_rows_linear(hidden, self.wi_0), few_rows_linear(hidden, self.wi_1)
        return run_activation(self.act, gate) * up


class T5LayerFF(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.DenseReluDense = (T5DenseGatedActDense if config.is_gated_act else T5DenseActDense)(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden):
        return residual_block(hidden, lambda x: (self.DenseReluDense(x), None), self.layer_norm, True,
                              self.dropout.p, self.training)[0]


class T5Attention(nn.Module):
    """Unscaled multi-head attention (q/k/v/o); the relative-position bias arrives inside the additive mask."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool = False, layer_idx: int = 0):
        super().__init__()
        self.is_decoder, self.has_relative_attention_bias = config.is_decoder, has_relative_attention_bias
        self.n_heads, self.layer_idx, self.dropout = config.num_heads, layer_idx, config.dropout_rate
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.d_model, self.key_value_proj_dim = config.d_model, config.d_kv
        self.inner_dim = inner = config.num_heads * config.d_kv
        self.q, self.k, self.v = (nn.Linear(config.d_model, inner, bias=False) for _ in range(3))
        self.o = nn.Linear(inner, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, self.n_heads)

    def compute_bias(self, query_length: int, key_length: int, device=None, past_seen_tokens: int = 0):
        """(1, heads, query, key) bias of queries at positions past_seen_tokens.. over keys at 0..key_length-1."""
        return relative_position_bias(self.relative_attention_bias, query_length, key_length, past_seen_tokens,
                                      not self.is_decoder, self.relative_attention_max_distance)

    def forward(self, hidden, mask=None, cache=None, context=None, want_weights=False):
        q = split_heads(few_rows_linear(hidden, self.q), self.n_heads)  # (batch, heads, seq, d_kv)
        k, v = cached_key_values(cache, self.layer_idx, context is not None, lambda x: (
            split_heads(few_rows_linear(x, self.k), self.n_heads),
            split_heads(few_rows_linear(x, self.v), self.n_heads)),
            hidden if context is None else context)
        out, weights = attention(q, k, v, mask, self.dropout if self.training else 0.0, want_weights, scale=1.0)
        return few_rows_linear(merge_heads(out), self.o), weights


class T5LayerSelfAttention(nn.Module):
    """Pre-norm residual attention block; its attention is `SelfAttention` (`EncDecAttention` in the subclass)."""

    attention_name = "SelfAttention"

    def __init__(self, config, has_relative_attention_bias=False, layer_idx: int = 0):
        super().__init__()
        setattr(self, self.attention_name, T5Attention(config, has_relative_attention_bias, layer_idx))
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden, mask=None, cache=None, context=None, want_weights=False):
        attend = getattr(self, self.attention_name)
        return residual_block(hidden, lambda x: attend(x, mask, cache, context, want_weights), self.layer_norm, True,
                              self.dropout.p, self.training)


class T5LayerCrossAttention(T5LayerSelfAttention):
    attention_name = "EncDecAttention"

    def __init__(self, config, layer_idx: int = 0):
        super().__init__(config, False, layer_idx)


class T5Block(nn.Module):
    """Self-attention, cross-attention (decoder blocks), feed-forward -> (hidden, weights, cross weights)."""

    def __init__(self, config, has_relative_attention_bias=False, layer_idx: int = 0):
        super().__init__()
        self.is_decoder = config.is_decoder
        self.layer = nn.ModuleList([T5LayerSelfAttention(config, has_relative_attention_bias, layer_idx)])
        if self.is_decoder:
            self.layer.append(T5LayerCrossAttention(config, layer_idx))
        self.layer.append(T5LayerFF(config))

    def forward(self, hidden, mask=None, cache=None, context=None, context_mask=None, want_weights=False):
        hidden, weights = self.layer[0](hidden, mask, cache, want_weights=want_weights)
        cross = None
        if self.is_decoder and context is not None:
            hidden, cross = self.layer[1](clamp_half_overflow(hidden), context_mask, cache, context, want_weights)
        return clamp_half_overflow(self.layer[-1](clamp_half_overflow(hidden))), weights, cross


# ---------------------------------------------------------------------- stacks
class T5PreTrainedModel(BartPreTrainedModel):
    """Shares the encoder-decoder plumbing of BART's base class (encoder/decoder/head accessors, labels shift)."""

    config_class = T5Config
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load_unexpected = (r"decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias",)

    @torch.no_grad()
    def _init_weights(self, module):
        """Normal weights with std initializer_factor / sqrt(fan-in), as in the T5 paper; embeddings and untied
        heads with std initializer_factor."""
        factor, config = self.config.initializer_factor, self.config
        if isinstance(module, T5LayerNorm):
            module.weight.fill_(factor)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            fan_in = module.in_features if isinstance(module, nn.Linear) else 1
            module.weight.normal_(0.0, factor * fan_in ** -0.5)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
        if isinstance(module, T5Attention):  # queries absorb the 1/sqrt(d_kv) that T5 leaves out of attention
            module.q.weight.normal_(0.0, factor * (config.d_model * config.d_kv) ** -0.5)
            if module.has_relative_attention_bias:
                module.relative_attention_bias.weight.normal_(0.0, factor * config.d_model ** -0.5)
        head = getattr(module, "lm_head", None)
        if head is not None and head.weight is not getattr(getattr(module, "shared", None), "weight", None):
            head.weight.normal_(0.0, factor)

    def tied_weight_pairs(self) -> dict[str, str]:
        """The stacks always share `shared`; the LM head does when config.tie_word_embeddings (T5, not v1.1)."""
        tie_head = self.config.tie_word_embeddings
        return nested_tied_pairs(self, {t: s for t, s in self._tied_weights_keys.items()
                                        if t != "lm_head.weight" or tie_head})

    def _shift_right(self, input_ids):
        return self.prepare_decoder_input_ids_from_labels(input_ids)

    def _build_stacks(self, config, decoder: bool = True):
        """`shared`, `encoder` and (when `decoder`) `decoder`, each stack with its own copy of the config."""
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        encoder_config = copy.deepcopy(config)
        encoder_config.is_decoder, encoder_config.use_cache = False, False
        self.encoder = T5Stack(encoder_config)
        if decoder:
            decoder_config = copy.deepcopy(config)
            decoder_config.is_decoder, decoder_config.num_layers = True, config.num_decoder_layers
            self.decoder = T5Stack(decoder_config)


class T5Stack(T5PreTrainedModel):
    """Embeddings, blocks (the first computes the position bias), final norm; a decoder when config.is_decoder."""

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.is_decoder = config.is_decoder
        self.block = nn.ModuleList([T5Block(config, i == 0, i) for i in range(config.num_layers)])
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.post_init()

    def _masks(self, attention_mask, encoder_attention_mask, hidden, past: int):
        """(self-attention mask with the position bias added, cross-attention mask)"""
        seq, dtype, device = hidden.shape[1], hidden.dtype, hidden.device
        bias = self.block[0].layer[0].SelfAttention.compute_bias(seq, past + seq, device, past).to(dtype)
        if self.is_decoder:
            mask, is_causal, context_mask = seq2seq_decoder_masks(attention_mask, encoder_attention_mask, seq, past,
                                                                  False, dtype, device)
            mask = additive_mask(mask, is_causal, seq, past + seq, dtype, device)
        else:
            mask, context_mask = padding_mask(attention_mask, dtype), None
        return (bias if mask is None else bias + mask), context_mask  # (batch or 1, heads, query, key)

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                inputs_embeds=None, past_key_values=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        config = self.config
        want_weights, want_hidden = output_flags(config, output_attentions, output_hidden_states)
        check_one_input(input_ids, inputs_embeds)
        if use_cache and not self.is_decoder:
            raise ValueError("use_cache=True needs a decoder stack; the encoder has no key/value cache.")
        cache = seq2seq_cache(config, cache, past_key_values, use_cache, encoder_hidden_states is not None) \
            if self.is_decoder else None
        hidden = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        mask, context_mask = self._masks(attention_mask, encoder_attention_mask, hidden,
                                         cache.get_seq_length() if cache is not None else 0)
        hidden, states, weights, crosses = run_layers(
            self.block, self.dropout(hidden), want_weights, mask=mask, cache=cache, context=encoder_hidden_states,
            context_mask=context_mask)
        return finish(stack_output(BaseModelOutputWithPastAndCrossAttentions, self.dropout(
            self.final_layer_norm(hidden)), states, weights, want_weights, want_hidden, past_key_values=cache,
            cross_attentions=crosses if want_weights and crosses else None), return_dict, config)


# ---------------------------------------------------------------------- models
_STACK_TIES = {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}


class T5Model(T5PreTrainedModel):
    _tied_weights_keys = _STACK_TIES

    def __init__(self, config: T5Config):
        super().__init__(config)
        self._build_stacks(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, cache=None,
                **kwargs):
        check_kwargs(self, kwargs)
        out, encoder_outputs = run_encoder_decoder(self.encoder, self.decoder, **seq2seq_model_args(locals()))
        return finish(seq2seq_output(Seq2SeqModelOutput, out, encoder_outputs, last_hidden_state=out.last_hidden_state),
                      return_dict, self.config)


class T5ForConditionalGeneration(T5PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {**_STACK_TIES, "lm_head.weight": "shared.weight"}
    _reorder_cache = staticmethod(reorder_self_attention)
    can_generate = classmethod(lambda cls: True)

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.model_dim = config.d_model
        self._build_stacks(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                cache=None, **kwargs):
        check_kwargs(self, kwargs)
        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        out, encoder_outputs = run_encoder_decoder(self.encoder, self.decoder, **seq2seq_model_args(locals()))
        hidden = out.last_hidden_state
        if self.config.scale_decoder_outputs:  # the tied head reuses the input embeddings, scaled back
            hidden = hidden * self.model_dim ** -0.5
        logits = few_rows_linear(hidden, self.lm_head)
        return finish(seq2seq_output(Seq2SeqLMOutput, out, encoder_outputs, loss=token_loss(logits, labels),
                                     logits=logits), return_dict, self.config)


class T5EncoderModel(T5PreTrainedModel):
    _tied_weights_keys = {"encoder.embed_tokens.weight": "shared.weight"}
    _keys_to_ignore_on_load_unexpected = (r"^decoder\.", r"^lm_head\.")

    def __init__(self, config: T5Config):
        config.use_cache, config.is_encoder_decoder = False, False
        super().__init__(config)
        self._build_stacks(config, decoder=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        return self.encoder(input_ids, attention_mask, inputs_embeds=inputs_embeds, return_dict=return_dict,
                            output_attentions=output_attentions, output_hidden_states=output_hidden_states)


class T5ForSequenceClassification(T5PreTrainedModel, BartForSequenceClassification):
    """BART's EOS classifier (same head) over a T5Model held as `transformer`."""

    base_class = T5Model


class T5ForTokenClassification(T5PreTrainedModel):
    def __init__(self, config: T5Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = T5EncoderModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(input_ids, attention_mask, inputs_embeds, output_attentions, output_hidden_states,
                               return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return finish(TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                            attentions=out.attentions), return_dict, self.config)


class T5ForQuestionAnswering(T5PreTrainedModel):
    """Start and end logits of an answer span, from the decoder (whose inputs default to the shifted inputs)."""

    _tied_weights_keys = _STACK_TIES

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.model_dim, self.num_labels = config.d_model, config.num_labels
        self._build_stacks(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, start_positions=None, end_positions=None, inputs_embeds=None,
                decoder_inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        use_cache = False if start_positions is not None and end_positions is not None else use_cache
        if decoder_input_ids is None and decoder_inputs_embeds is None and input_ids is not None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(input_ids)  # the inputs, shifted right
        out, encoder_outputs = run_encoder_decoder(self.encoder, self.decoder, **seq2seq_model_args(locals()))
        start_logits, end_logits = span_logits(self.qa_outputs(out.last_hidden_state))
        return finish(seq2seq_output(
            Seq2SeqQuestionAnsweringModelOutput, out, encoder_outputs, start_logits=start_logits, end_logits=end_logits,
            loss=span_loss(start_logits, end_logits, start_positions, end_positions)), return_dict, self.config)
