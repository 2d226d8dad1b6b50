"""BART (and DistilBART): a post-norm encoder-decoder with learned positions, and every task head. mBART, Marian and
Pegasus reuse these classes, changing the class attributes of `BartPreTrainedModel`."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module, run_activation
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import ClassificationHead, check_kwargs, finish
from ..layers import (attention, cached_key_values, check_one_input, clamp_half_overflow, few_rows_linear,
                      keep_last_logits, last_eos_state, merge_heads, nested_tied_pairs, output_flags, padding_mask,
                      reorder_self_attention, residual_block, run_encoder_decoder, run_layers, seq2seq_cache,
                      seq2seq_decoder_masks, seq2seq_model_args, sequence_classification_loss, shift_tokens_right,
                      span_logits, span_loss, split_heads, token_loss)
from ..modeling import PreTrainedModel
from ..outputs import (BaseModelOutput, BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions,
                       Seq2SeqLMOutput, Seq2SeqModelOutput, Seq2SeqQuestionAnsweringModelOutput,
                       Seq2SeqSequenceClassifierOutput, seq2seq_extras, seq2seq_output, stack_output)

# Shared by every BART-like config; `initializer_range` lets the generic initialisation read `init_std`.
BART_ATTRIBUTE_MAP = {"num_attention_heads": "encoder_attention_heads", "hidden_size": "d_model",
                      "num_hidden_layers": "encoder_layers", "initializer_range": "init_std"}
BART_DEFAULTS = dict(vocab_size=50265, max_position_embeddings=1024, encoder_layers=12, encoder_ffn_dim=4096,
                     encoder_attention_heads=16, decoder_layers=12, decoder_ffn_dim=4096, decoder_attention_heads=16,
                     encoder_layerdrop=0.0, decoder_layerdrop=0.0, activation_function="gelu", d_model=1024,
                     dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, init_std=0.02, scale_embedding=False,
                     use_cache=True, is_encoder_decoder=True, is_decoder=False, tie_word_embeddings=True)


class BartConfig(PretrainedConfig):
    model_type = "bart"
    attribute_map = BART_ATTRIBUTE_MAP
    defaults = dict(BART_DEFAULTS, classifier_dropout=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                    decoder_start_token_id=2, forced_eos_token_id=2)

    def __init__(self, **kwargs):  # BART classifies three ways (MNLI) unless told otherwise
        super().__init__(**({"num_labels": 3, **kwargs} if kwargs.get("id2label") is None else kwargs))


class BartLearnedPositionalEmbedding(nn.Embedding):
    offset = 2  # position i is row i + 2 (the two first rows are a fairseq legacy)

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__(num_embeddings + self.offset, embedding_dim)

    def forward(self, seq_len: int, past_len: int = 0):
        end = past_len + seq_len + self.offset  # -> (seq_len, dim) embeddings of the next seq_len positions
        if not torch.jit.is_tracing() and end > self.num_embeddings:  # traced, the size is a tensor; checked eagerly
            raise ValueError(f"The model encodes at most {self.num_embeddings - self.offset} positions "
                             f"(max_position_embeddings) but got {past_len + seq_len}; truncate the inputs.")
        return self.weight[past_len + self.offset:end]


class BartScaledWordEmbedding(nn.Embedding):
    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, embed_scale: float = 1.0):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.embed_scale = embed_scale

    def forward(self, input_ids):
        return super().forward(input_ids) * self.embed_scale


class BartAttention(nn.Module):
    """Multi-head attention (q/k/v/out projections); cross-attention over `context` (the encoder output) when given."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, layer_idx: int = 0, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ConfigError(f"d_model={embed_dim} must be a multiple of the number of attention heads ({num_heads}).")
        self.num_heads, self.dropout, self.layer_idx = num_heads, dropout, layer_idx
        self.embed_dim, self.head_dim = embed_dim, embed_dim // num_heads
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (
            nn.Linear(embed_dim, embed_dim, bias=bias) for _ in range(4))

    def forward(self, hidden, mask=None, is_causal=False, cache=None, context=None, want_weights=False):
        q = split_heads(few_rows_linear(hidden, self.q_proj), self.num_heads)  # (batch, heads, seq, head_dim)
        k, v = cached_key_values(cache, self.layer_idx, context is not None, lambda x: (
            split_heads(few_rows_linear(x, self.k_proj), self.num_heads),
            split_heads(few_rows_linear(x, self.v_proj), self.num_heads)),
            hidden if context is None else context)
        out, weights = attention(q, k, v, mask, self.dropout if self.training else 0.0, want_weights,
                                 is_causal=is_causal)
        return few_rows_linear(merge_heads(out), self.out_proj), weights


class BartEncoderLayer(nn.Module):
    """Self-attention, cross-attention (decoder layers) and feed-forward, each with a residual and a LayerNorm after
    it (BART, Marian) or before it (`pre_norm`: mBART, Pegasus). -> (hidden, weights, cross-attention weights)"""

    def __init__(self, config, layer_idx: int = 0, pre_norm: bool = False, decoder: bool = False):
        super().__init__()
        width, self.pre_norm, side = config.d_model, pre_norm, "decoder" if decoder else "encoder"
        heads, ffn = getattr(config, f"{side}_attention_heads"), getattr(config, f"{side}_ffn_dim")
        self.self_attn = BartAttention(width, heads, config.attention_dropout, layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        if decoder:
            self.encoder_attn = BartAttention(width, heads, config.attention_dropout, layer_idx)
            self.encoder_attn_layer_norm = nn.LayerNorm(width)
        self.embed_dim, self.dropout, self.activation_dropout = width, config.dropout, config.activation_dropout
        self.activation_fn = activation_module(config.activation_function)
        self.fc1, self.fc2 = nn.Linear(width, ffn), nn.Linear(ffn, width)
        self.final_layer_norm = nn.LayerNorm(width)

    def _residual(self, norm, sublayer, hidden):
        return residual_block(hidden, sublayer, norm, self.pre_norm, self.dropout, self.training)

    def _feed_forward(self, hidden):
        inner = run_activation(self.activation_fn, few_rows_linear(hidden, self.fc1))
        return few_rows_linear(F.dropout(inner, self.activation_dropout, self.training), self.fc2), None

    def forward(self, hidden, mask=None, want_weights=False, is_causal=False, cache=None, context=None,
                context_mask=None):
        hidden, weights = self._residual(self.self_attn_layer_norm, lambda x: self.self_attn(
            x, mask, is_causal, cache, want_weights=want_weights), hidden)
        cross = None
        if context is not None:
            hidden, cross = self._residual(self.encoder_attn_layer_norm, lambda x: self.encoder_attn(
                x, context_mask, False, cache, context, want_weights), hidden)
        return clamp_half_overflow(self._residual(self.final_layer_norm, self._feed_forward, hidden)[0]), weights, cross


class BartClassificationHead(ClassificationHead):
    """dropout, dense, tanh, dropout, out_proj over the sentence vector."""


# ---------------------------------------------------------------------- stacks
class BartPreTrainedModel(PreTrainedModel):
    """Base of every BART-like class; mBART, Marian and Pegasus change the class attributes below."""

    config_class = BartConfig
    base_model_prefix = "model"
    _keys_to_ignore_on_load_unexpected = (r"encoder\.version$", r"decoder\.version$")
    pre_norm = False                # mBART, Pegasus: LayerNorm before each block, and once after each stack
    embedding_norm = True           # `layernorm_embedding` after adding the positions (BART, mBART)
    scaled_word_embeddings = True   # the embedding module scales its output; Marian, Pegasus: the stacks do
    position_class = BartLearnedPositionalEmbedding

    def word_embeddings(self, config, vocab_size: int) -> nn.Embedding:
        if not self.scaled_word_embeddings:
            return nn.Embedding(vocab_size, config.d_model, config.pad_token_id)
        scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        return BartScaledWordEmbedding(vocab_size, config.d_model, config.pad_token_id, embed_scale=scale)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if hasattr(module, "final_logits_bias"):
            module.final_logits_bias.zero_()

    def tied_weight_pairs(self) -> dict[str, str]:
        return nested_tied_pairs(self, super().tied_weight_pairs())

    def prepare_decoder_input_ids_from_labels(self, labels):
        start = getattr(self.config, "decoder_start_token_id", None)
        return shift_tokens_right(labels, self.config.pad_token_id, start)

    def get_input_embeddings(self):  # `shared`, else a stack's `embed_tokens`, else those of the model a head holds
        own = next((getattr(self, n) for n in ("shared", "embed_tokens") if n in self._modules), None)
        return own if own is not None else super().get_input_embeddings()

    def set_input_embeddings(self, value):
        names = [n for n in ("shared", "embed_tokens") if n in self._modules]
        if not names:
            return super().set_input_embeddings(value)
        for owner in (self, *(getattr(self, n) for n in ("encoder", "decoder") if n in self._modules)):
            setattr(owner, names[0] if owner is self else "embed_tokens", value)

    def get_encoder(self):
        return self.base_model.encoder

    def get_decoder(self):
        return self.base_model.decoder

    def get_output_embeddings(self):
        return getattr(self, "lm_head", None)

    def set_output_embeddings(self, value):
        self.lm_head = value


class BartStack(BartPreTrainedModel):
    """Word and position embeddings (+ LayerNorm), then the layers; pre-norm variants end with `layer_norm`."""

    is_decoder_stack = False

    def __init__(self, config):
        super().__init__(config)
        decoder, side = self.is_decoder_stack, "decoder" if self.is_decoder_stack else "encoder"
        self.dropout, self.layerdrop = config.dropout, getattr(config, f"{side}_layerdrop")
        self.padding_idx = config.pad_token_id
        setattr(self, "max_target_positions" if decoder else "max_source_positions", config.max_position_embeddings)
        scaled = config.scale_embedding and not self.scaled_word_embeddings
        self.embed_scale = math.sqrt(config.d_model) if scaled else 1.0
        vocab = getattr(config, "decoder_vocab_size", None) if decoder else None  # Marian's target vocabulary
        self.embed_tokens = self.word_embeddings(config, vocab or config.vocab_size)
        self.embed_positions = self.position_class(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList([BartEncoderLayer(config, i, self.pre_norm, decoder)
                                     for i in range(getattr(config, f"{side}_layers"))])
        if self.embedding_norm:
            self.layernorm_embedding = nn.LayerNorm(config.d_model)
        if self.pre_norm:
            self.layer_norm = nn.LayerNorm(config.d_model)
        self.post_init()

    def _embed(self, input_ids, inputs_embeds, past_len: int = 0):
        check_one_input(input_ids, inputs_embeds)
        # Marian and Pegasus scale looked-up embeddings in both stacks, and given ones in the decoder only
        scale = self.embed_scale if inputs_embeds is None or self.is_decoder_stack else 1.0
        inputs_embeds = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        inputs_embeds = inputs_embeds * scale if scale != 1.0 else inputs_embeds
        hidden = inputs_embeds + self.embed_positions(inputs_embeds.shape[1], past_len).to(inputs_embeds.dtype)
        hidden = self.layernorm_embedding(hidden) if self.embedding_norm else hidden
        return F.dropout(hidden, self.dropout, self.training)

    def _layers(self, hidden, want_weights, **kwargs):  # -> (hidden, states, weights, cross weights)
        norm = self.layer_norm if self.pre_norm else None
        return run_layers(self.layers, hidden, want_weights, self.layerdrop, self.training, norm, **kwargs)


class BartEncoder(BartStack):
    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        hidden = self._embed(input_ids, inputs_embeds)
        hidden, states, weights, _ = self._layers(hidden, want_weights, mask=padding_mask(attention_mask, hidden.dtype))
        return finish(stack_output(BaseModelOutput, hidden, states, weights, want_weights, want_hidden), return_dict,
                      self.config)


class BartDecoder(BartStack):
    is_decoder_stack = True

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                past_key_values=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        cache = seq2seq_cache(self.config, cache, past_key_values, use_cache, encoder_hidden_states is not None)
        past = cache.get_seq_length() if cache is not None else 0
        hidden = self._embed(input_ids, inputs_embeds, past)
        mask, is_causal, context_mask = seq2seq_decoder_masks(attention_mask, encoder_attention_mask, hidden.shape[1],
                                                              past, want_weights, hidden.dtype, hidden.device)
        hidden, states, weights, cross = self._layers(hidden, want_weights, mask=mask, is_causal=is_causal, cache=cache,
                                                      context=encoder_hidden_states, context_mask=context_mask)
        out = stack_output(BaseModelOutputWithPastAndCrossAttentions, hidden, states, weights, want_weights,
                           want_hidden, past_key_values=cache, cross_attentions=cross if want_weights and cross else None)
        return finish(out, return_dict, self.config)


# ---------------------------------------------------------------------- models
class BartModel(BartPreTrainedModel):
    encoder_class, decoder_class = BartEncoder, BartDecoder
    shift_inputs = True  # without decoder inputs, the decoder reads the encoder inputs shifted right (denoising)
    _tied_weights_keys = {f"{stack}.embed_tokens.weight": "shared.weight" for stack in ("encoder", "decoder")}

    def __init__(self, config):
        super().__init__(config)
        self.shared = self.word_embeddings(config, config.vocab_size)
        self.encoder = self.encoder_class(config)
        self.decoder = self.decoder_class(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, cache=None,
                **kwargs):
        check_kwargs(self, kwargs)
        if decoder_input_ids is None and decoder_inputs_embeds is None and self.shift_inputs and input_ids is not None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(input_ids)
        out, encoder_outputs = run_encoder_decoder(self.encoder, self.decoder, **seq2seq_model_args(locals()))
        return finish(seq2seq_output(Seq2SeqModelOutput, out, encoder_outputs, last_hidden_state=out.last_hidden_state),
                      return_dict, self.config)


class BartForConditionalGeneration(BartPreTrainedModel, GenerationMixin):
    base_class = BartModel
    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}
    _keys_to_ignore_on_load_missing = (r"^final_logits_bias$",)
    _reorder_cache = staticmethod(reorder_self_attention)
    can_generate = classmethod(lambda cls: True)

    def __init__(self, config):
        super().__init__(config)
        self.model = self.base_class(config)
        vocab = self.model.decoder.embed_tokens.num_embeddings
        self.register_buffer("final_logits_bias", torch.zeros(1, vocab))
        self.lm_head = nn.Linear(config.d_model, vocab, bias=False)
        self.post_init()

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        size, old = self.lm_head.weight.shape[0], self.final_logits_bias  # one bias per output logit
        self.final_logits_bias = torch.cat([old[:, :size], old.new_zeros(1, max(0, size - old.shape[1]))], dim=1)
        return embeddings

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                cache=None, **kwargs):
        check_kwargs(self, kwargs)
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        out = self.model(**seq2seq_model_args(locals()))
        hidden = out.last_hidden_state
        logits = few_rows_linear(hidden, self.lm_head) + self.final_logits_bias.to(hidden.device)
        return finish(Seq2SeqLMOutput(loss=token_loss(logits, labels), logits=logits, **seq2seq_extras(out)),
                      return_dict, self.config)


class BartForSequenceClassification(BartPreTrainedModel):
    """Classifies the decoder's hidden state at the last EOS token of each input (T5's classifier too)."""

    base_class = BartModel

    def __init__(self, config):
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.base_class(config))
        self.classification_head = BartClassificationHead(config.d_model, config.d_model, config.num_labels,
                                                          config.classifier_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        use_cache = False if labels is not None else use_cache
        if decoder_input_ids is None and decoder_inputs_embeds is None and input_ids is not None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(input_ids)  # the inputs, shifted right
        out = self.base_model(**seq2seq_model_args(locals()))
        logits = self.classification_head(last_eos_state(out.last_hidden_state, input_ids, self.config.eos_token_id))
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels.to(logits.device))
        return finish(Seq2SeqSequenceClassifierOutput(loss=loss, logits=logits, **seq2seq_extras(out)), return_dict,
                      self.config)


class BartForQuestionAnswering(BartPreTrainedModel):
    base_class = BartModel

    def __init__(self, config):
        config.num_labels = 2
        super().__init__(config)
        self.model, self.num_labels = self.base_class(config), config.num_labels
        self.qa_outputs = nn.Linear(config.d_model, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, start_positions=None, end_positions=None, inputs_embeds=None,
                decoder_inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        use_cache = False if start_positions is not None and end_positions is not None else use_cache
        out = self.model(**seq2seq_model_args(locals()))
        start_logits, end_logits = span_logits(self.qa_outputs(out.last_hidden_state))
        return finish(Seq2SeqQuestionAnsweringModelOutput(
            loss=span_loss(start_logits, end_logits, start_positions, end_positions), start_logits=start_logits,
            end_logits=end_logits, **seq2seq_extras(out)), return_dict, self.config)


class BartForCausalLM(BartPreTrainedModel, GenerationMixin):
    """The decoder alone as a language model. Its labels are NOT shifted: labels[t] is the target of logits[t]."""

    decoder_class = BartDecoder
    _tied_weights_keys = {"lm_head.weight": "model.decoder.embed_tokens.weight"}
    can_generate = classmethod(lambda cls: True)

    def __init__(self, config):
        config.is_decoder, config.is_encoder_decoder = True, False
        super().__init__(config)
        self.model = nn.ModuleDict({"decoder": self.decoder_class(config)})  # keeps the `model.decoder.` key prefix
        self.lm_head = nn.Linear(config.d_model, self.model.decoder.embed_tokens.num_embeddings, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.decoder.embed_tokens

    def set_input_embeddings(self, value):
        self.model.decoder.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                past_key_values=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep=0, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.model.decoder(input_ids, attention_mask, encoder_hidden_states, encoder_attention_mask,
                                 past_key_values, inputs_embeds, use_cache, output_attentions, output_hidden_states,
                                 return_dict=True, cache=cache)
        logits = few_rows_linear(keep_last_logits(out.last_hidden_state, logits_to_keep), self.lm_head)
        return finish(CausalLMOutputWithCrossAttentions(
            loss=token_loss(logits, labels), logits=logits, past_key_values=out.past_key_values,
            hidden_states=out.hidden_states, attentions=out.attentions, cross_attentions=out.cross_attentions),
            return_dict, self.config)
