"""BERT: config, encoder blocks (reused by RoBERTa and others) and the base model; the task heads are in
bert_heads.py. Attribute paths are checkpoint keys.

A decoder (`is_decoder=True`) attends causally, may cross-attend (`add_cross_attention=True`) and keeps a
key/value cache (`past_key_values`, `use_cache`) for incremental decoding."""

from __future__ import annotations

import torch
from torch import nn

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..activations import activation_module, linear_then_activation, prune_attention_heads
from ..chunking import apply_in_chunks
from ..layers import (additive_mask, attention, cached_key_values, decoder_mask, expand_head_mask, few_rows_linear,
                      merge_heads, output_flags, padding_mask, seq2seq_cache, split_heads)
from ..modeling import PreTrainedModel
from ..outputs import (BaseModelOutputWithPastAndCrossAttentions, BaseModelOutputWithPoolingAndCrossAttentions,
                       pack)


class BertConfig(PretrainedConfig):
    model_type = "bert"
    defaults = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                    initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0, use_cache=True,
                    classifier_dropout=None)


# ---------------------------------------------------------------------- building blocks
class BertEmbeddings(nn.Module):
    """Word + token-type + position embeddings, then LayerNorm. `width` defaults to hidden_size."""

    def __init__(self, config, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, width, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, width)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width)
        self.LayerNorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, past_length=0):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if token_type_ids is None:  # all type 0: add the one row, no gather over (batch, seq)
            embeddings = inputs_embeds + self.token_type_embeddings.weight[0]
        else:
            embeddings = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if position_ids is None:  # positions 0..seq-1: a slice of the table, no gather
            embeddings = embeddings + self.position_embeddings.weight[past_length:past_length + inputs_embeds.shape[1]]
        else:
            embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    """Multi-head attention (query/key/value); keys and values come from `context` when cross-attending."""

    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ConfigError(f"hidden_size={config.hidden_size} must be a multiple of num_attention_heads.")
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.hidden_size // config.num_attention_heads
        self.all_head_size = config.hidden_size  # num_attention_heads * attention_head_size, less once pruned
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)  # its p is read by `attention` in training

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None, context=None, is_causal=False,
                cache=None, layer_idx=None):
        source = hidden if context is None else context
        q = split_heads(few_rows_linear(hidden, self.query), self.num_attention_heads)  # (batch, heads, seq, head_dim)
        if cache is None:
            k, v = self.key_values(source)
        else:  # a decoder's cache: new keys and values appended, the encoder's projected once
            k, v = cached_key_values(cache, layer_idx, context is not None, self.key_values, source)
        out, weights = attention(q, k, v, mask, dropout_p=self.dropout.p if self.training else 0.0,
                                 want_weights=want_weights, head_mask=head_mask, is_causal=is_causal)
        return merge_heads(out), weights  # (batch, seq, hidden)

    def key_values(self, source):
        """(keys, values), each (batch, heads, seq, head_dim)."""
        return tuple(split_heads(few_rows_linear(source, proj), self.num_attention_heads)
                     for proj in (self.key, self.value))


class BertSelfOutput(nn.Module):
    """Projection, dropout, residual add and LayerNorm after attention."""

    def __init__(self, config, in_size: int | None = None):
        super().__init__()
        self.dense = nn.Linear(in_size or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(few_rows_linear(hidden, self.dense)) + residual)


class BertOutput(BertSelfOutput):  # the feed-forward block's down projection
    def __init__(self, config):
        super().__init__(config, in_size=config.intermediate_size)


class BertAttention(nn.Module):
    self_class, output_class = BertSelfAttention, BertSelfOutput  # a family's own attention and output step

    def __init__(self, config):
        super().__init__()
        self.self = self.self_class(config)
        self.output = self.output_class(config)
        self.pruned_heads = set()

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_attention_heads(self, self.self, heads, ("query", "key", "value"), self.output)

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None, context=None, is_causal=False,
                cache=None, layer_idx=None):
        out, weights = self.self(hidden, mask, want_weights, head_mask, context, is_causal, cache, layer_idx)
        return self.output(out, hidden), weights


class BertIntermediate(nn.Module):
    def __init__(self, config, in_size: int | None = None):
        super().__init__()
        self.dense = nn.Linear(in_size or config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation_module(config.hidden_act)

    def forward(self, hidden):
        return linear_then_activation(hidden, self.dense, self.intermediate_act_fn)


class BertPredictionHeadTransform(nn.Module):
    """dense (hidden_size -> `width`, default hidden_size), activation, LayerNorm."""

    def __init__(self, config, width: int | None = None):
        super().__init__()
        width = width or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, width)
        self.transform_act_fn = activation_module(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(width, eps=config.layer_norm_eps)

    def forward(self, hidden):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden)))


class BertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward. Returns (hidden, weights, cross weights)."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        if config.add_cross_attention:
            self.crossattention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)
        self.add_cross_attention = config.add_cross_attention
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1

    def forward(self, hidden, mask=None, want_weights=False, head_mask=None, encoder_hidden_states=None,
                encoder_mask=None, is_causal=False, cache=None, layer_idx=None):
        hidden, weights = self.attention(hidden, mask, want_weights, head_mask, is_causal=is_causal, cache=cache,
                                         layer_idx=layer_idx)
        cross = None
        if encoder_hidden_states is not None:  # needs add_cross_attention=True (and is_decoder=True)
            hidden, cross = self.crossattention(hidden, encoder_mask, want_weights, head_mask,
                                                context=encoder_hidden_states, cache=cache, layer_idx=layer_idx)
        out = apply_in_chunks(self.feed_forward_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)
        return out, weights, cross

    def feed_forward_chunk(self, hidden):
        return self.output(self.intermediate(hidden), hidden)


class BertEncoder(nn.Module):
    """The stack of layers; collects hidden states / attention weights when asked."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, hidden, mask=None, head_mask=None, output_attentions=False, output_hidden_states=False,
                encoder_hidden_states=None, encoder_mask=None, is_causal=False, cache=None):
        head_masks = expand_head_mask(head_mask, len(self.layer), hidden.dtype)
        states, weights, crosses = [hidden], [], []
        for index, (layer, layer_head_mask) in enumerate(zip(self.layer, head_masks)):
            hidden, w, c = layer(hidden, mask, output_attentions, layer_head_mask, encoder_hidden_states,
                                 encoder_mask, is_causal, cache, index)
            states.append(hidden)
            weights.append(w)
            crosses += [c] if c is not None else []
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden, hidden_states=tuple(states) if output_hidden_states else None,
            attentions=tuple(weights) if output_attentions else None,
            cross_attentions=tuple(crosses) if output_attentions and crosses else None)


class BertPooler(nn.Module):
    """tanh(dense(first token))."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden):
        return self.activation(self.dense(hidden[:, 0]))


class BertLMPredictionHead(nn.Module):
    """Transform, then the vocabulary projection (its weight tied to the word embeddings, its bias to `bias`)."""

    def __init__(self, config):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden):
        return self.decoder(self.transform(hidden))


class BertPreTrainingHeads(nn.Module):
    """`cls` of the heads: `predictions` (masked-LM scores) and/or `seq_relationship` (next-sentence scores)."""

    prediction_head_class = BertLMPredictionHead

    def __init__(self, config, mlm: bool = True, nsp: bool = True):
        super().__init__()
        if mlm:
            self.predictions = self.prediction_head_class(config)
        if nsp:
            self.seq_relationship = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden=None, pooled=None):
        """(MLM scores, NSP scores), each None when its input or layer is absent."""
        return (self.predictions(hidden) if hidden is not None else None,
                self.seq_relationship(pooled) if pooled is not None else None)


# ---------------------------------------------------------------------- models
class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # older checkpoints saved these buffers; they are recomputed here
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$", r"embeddings\.token_type_ids$")
    lm_head_class = BertLMPredictionHead  # the family's LM head, whose own `bias` parameter is the vocabulary bias

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, self.lm_head_class):
            module.bias.zero_()


class WordEmbeddings:
    """Mixin of the base encoders (listed first): the input embeddings are `embeddings.word_embeddings`."""

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value


class BertModel(WordEmbeddings, BertPreTrainedModel):
    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ConfigError("Only position_embedding_type='absolute' is implemented for BERT.")
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.encoder.layer[layer].attention.prune_heads(heads)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        cache = decoder_cache(self.config, input_ids, inputs_embeds, past_key_values, use_cache,
                              encoder_hidden_states)
        past = cache.get_seq_length() if cache is not None else 0
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, past_length=past)
        out = run_encoder(self, hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                          output_attentions, output_hidden_states, cache)
        pooled = self.pooler(out.last_hidden_state) if self.pooler is not None else None
        return pack(BaseModelOutputWithPoolingAndCrossAttentions, return_dict, self.config,
                    last_hidden_state=out.last_hidden_state, pooler_output=pooled, hidden_states=out.hidden_states,
                    past_key_values=cache, attentions=out.attentions, cross_attentions=out.cross_attentions)


def check_encoder_inputs(input_ids, inputs_embeds, past_key_values):
    """Token ids or vectors, exactly one of them; no cache, since these encoders keep none."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
    if past_key_values is not None:
        raise NotImplementedError("This model has no key/value cache (past_key_values); pass the whole sequence "
                                  "instead.")


def decoder_cache(config, input_ids, inputs_embeds, past_key_values, use_cache, encoder_hidden_states):
    """Checks the inputs; the key/value cache a decoder (is_decoder) reads and fills: the one given, else a new one
    when use_cache (default: config.use_cache), an EncoderDecoderCache when it cross-attends. None for an encoder,
    which refuses a cache."""
    if not config.is_decoder:
        check_encoder_inputs(input_ids, inputs_embeds, past_key_values)
        return None
    check_encoder_inputs(input_ids, inputs_embeds, None)
    return seq2seq_cache(config, None, past_key_values, use_cache, encoder_hidden_states is not None)


def run_encoder(model, hidden, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask,
                output_attentions, output_hidden_states, cache=None):
    """`model.encoder` over the embedded `hidden`: padding mask, or padding + causal for a decoder (is_decoder, after
    the tokens its `cache` holds), the cross-attention mask, and the config's output flags by default."""
    config = model.config
    mask, is_causal = padding_mask(attention_mask, hidden.dtype), False  # None when nothing is padded
    if config.is_decoder:  # padding + causal; None with is_causal when nothing is padded (SDPA's own kernel)
        seq, past = hidden.shape[1], cache.get_seq_length() if cache is not None else 0
        mask, is_causal = decoder_mask(attention_mask, seq, past)
        mask = additive_mask(mask, False, seq, past + seq, hidden.dtype, hidden.device)
    want_weights, want_hidden = output_flags(config, output_attentions, output_hidden_states)
    return model.encoder(hidden, mask, head_mask, want_weights, want_hidden, encoder_hidden_states,
                         padding_mask(encoder_attention_mask, hidden.dtype), is_causal, cache)
