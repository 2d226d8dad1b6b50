"""XLM: the config, the encoder (language embeddings, sinusoidal or learned positions, optional causal mode, a
key/value cache) and the language-model head (a linear projection or an adaptive log-softmax). The task heads live
in xlm_heads.py; FlauBERT (flaubert.py) reuses all of it with `pre_norm` and `layerdrop` switched on by its config.

Attribute paths are the checkpoint keys (`transformer.attentions.0.q_lin.weight`, `transformer.ffns.0.lin1.weight`,
`transformer.layer_norm_emb.weight`, `pred_layer.proj.weight`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module, prune_attention_heads
from ..cache import Cache, EncoderDecoderCache
from ..chunking import apply_in_chunks
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import check_kwargs
from ..layers import (attention, causal_mask, check_position_limit, expand_head_mask, keep_last_logits, merge_heads,
                      output_flags, padding_mask, split_heads)
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutput, MaskedLMOutput, extras, pack
from .distilbert import sinusoidal_table

XLM_DEFAULTS = dict(
    vocab_size=30145, emb_dim=2048, n_layers=12, n_heads=16, dropout=0.1, attention_dropout=0.1, gelu_activation=True,
    sinusoidal_embeddings=False, causal=False, asm=False, n_langs=1, use_lang_emb=True, max_position_embeddings=512,
    embed_init_std=2048 ** -0.5, layer_norm_eps=1e-12, init_std=0.02, unk_index=3, mask_index=5, is_encoder=True,
    summary_type="first", summary_use_proj=True, summary_activation=None, summary_proj_to_labels=True,
    summary_first_dropout=0.1, start_n_top=5, end_n_top=5, mask_token_id=0, lang_id=0, pad_token_id=2,
    bos_token_id=0)


class XLMConfig(PretrainedConfig):
    """XLM settings under their Transformers names. `asm_cutoffs` and `asm_div_value` (for `asm=True`) are extra
    keys, as in Transformers."""

    model_type = "xlm"
    attribute_map = {"hidden_size": "emb_dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers",
                     "n_words": "vocab_size", "bos_index": "bos_token_id", "eos_index": "eos_token_id",
                     "pad_index": "pad_token_id"}
    defaults = {**XLM_DEFAULTS, "eos_token_id": 1}


class XLMMultiHeadAttention(nn.Module):
    """Self-attention with XLM's weight names (q_lin, k_lin, v_lin, out_lin); new keys and values are appended to
    the layer's slot of a cache when one is given."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        dim, self.n_heads, self.layer_idx = config.emb_dim, config.n_heads, layer_idx
        if dim % self.n_heads:
            raise ConfigError(f"emb_dim={dim} is not a multiple of n_heads={self.n_heads}; change one of them.")
        self.layer_id, self.dim, self.head_dim = layer_idx, dim, dim // self.n_heads  # dim: less once pruned
        self.pruned_heads = set()
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = config.attention_dropout

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_attention_heads(self, self, heads, ("q_lin", "k_lin", "v_lin"), self, "out_lin", "n_heads", "dim",
                              self.head_dim)

    def forward(self, hidden, mask, want_weights=False, cache=None, head_mask=None):
        q, k, v = (split_heads(lin(hidden), self.n_heads) for lin in (self.q_lin, self.k_lin, self.v_lin))
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)  # (batch, heads, past + seq, head_dim)
        out, weights = attention(q, k, v, mask, dropout_p=self.dropout if self.training else 0.0,
                                 want_weights=want_weights, head_mask=head_mask)
        return self.out_lin(merge_heads(out)), weights


class XLMTransformerFFN(nn.Module):
    """lin1 -> gelu (or relu) -> lin2 -> dropout."""

    def __init__(self, config):
        super().__init__()
        self.lin1 = nn.Linear(config.emb_dim, 4 * config.emb_dim)
        self.lin2 = nn.Linear(4 * config.emb_dim, config.emb_dim)
        self.act = activation_module("gelu" if config.gelu_activation else "relu")
        self.dropout = config.dropout
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1

    def forward(self, hidden):
        return apply_in_chunks(self.ff_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)

    def ff_chunk(self, hidden):
        return F.dropout(self.lin2(self.act(self.lin1(hidden))), self.dropout, self.training)


class XLMPreTrainedModel(PreTrainedModel):
    config_class = XLMConfig
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load_unexpected = (r"position_ids$",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, nn.Embedding):
            if self.config.embed_init_std is not None:
                module.weight.normal_(mean=0.0, std=self.config.embed_init_std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        if getattr(module, "sinusoidal", False):
            module.weight.copy_(sinusoidal_table(*module.weight.shape))


def _cache_of(cache):
    """The self-attention part of a cache (an EncoderDecoderCache holds it next to an unused cross part)."""
    if cache is not None and not isinstance(cache, Cache):
        raise TypeError(f"cache must be a leanformers Cache (e.g. DynamicCache()), not {type(cache).__name__}; "
                        f"pass the same object to each call and it fills itself.")
    return cache.self_attention_cache if isinstance(cache, EncoderDecoderCache) else cache


class XLMModel(XLMPreTrainedModel):
    """Embeddings (+ language embeddings), then `n_layers` of attention and feed-forward, each with a residual and a
    LayerNorm after it (before it with `pre_norm`); padded positions are zeroed after every layer."""

    def __init__(self, config):
        super().__init__(config)
        if not config.is_encoder:
            raise ConfigError("XLM only runs as an encoder: set is_encoder=True (causal=True gives a left-to-right "
                              "language model).")
        dim = self.dim = config.emb_dim
        self.is_encoder, self.causal, self.n_langs = True, config.causal, config.n_langs
        self.use_lang_emb = config.use_lang_emb
        self.n_words, self.eos_index, self.pad_index = config.vocab_size, config.eos_index, config.pad_index
        self.hidden_dim, self.n_heads, self.n_layers = 4 * dim, config.n_heads, config.n_layers
        self.dropout, self.attention_dropout = config.dropout, config.attention_dropout
        self.pre_norm, self.layerdrop = getattr(config, "pre_norm", False), getattr(config, "layerdrop", 0.0)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, dim)
        self.position_embeddings.sinusoidal = bool(config.sinusoidal_embeddings)
        if config.n_langs > 1 and config.use_lang_emb:
            self.lang_embeddings = nn.Embedding(config.n_langs, dim)
        self.embeddings = nn.Embedding(config.vocab_size, dim, padding_idx=config.pad_index)
        self.layer_norm_emb = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        layers = range(config.n_layers)
        self.attentions = nn.ModuleList(XLMMultiHeadAttention(config, i) for i in layers)
        self.layer_norm1 = nn.ModuleList(nn.LayerNorm(dim, eps=config.layer_norm_eps) for _ in layers)
        self.ffns = nn.ModuleList(XLMTransformerFFN(config) for _ in layers)
        self.layer_norm2 = nn.ModuleList(nn.LayerNorm(dim, eps=config.layer_norm_eps) for _ in layers)
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.attentions[layer].prune_heads(heads)

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, head_mask=None, **kwargs):
        check_kwargs(self, kwargs)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        batch, seq = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        check_position_limit(seq, self.config.max_position_embeddings)
        keep, attn_mask = self._masks(input_ids, attention_mask, lengths, batch, seq, inputs_embeds)
        cache = _cache_of(cache)
        past = cache.get_seq_length() if cache is not None else 0
        new = slice(past, seq)  # the cache already holds the first `past` positions: only the rest is computed
        if position_ids is None:
            position_ids = torch.arange(seq, device=keep.device)[None]
        hidden = inputs_embeds[:, new] if inputs_embeds is not None else self.embeddings(input_ids[:, new])
        hidden = hidden + self.position_embeddings(position_ids[:, new]).expand_as(hidden)
        if langs is not None and hasattr(self, "lang_embeddings"):
            hidden = hidden + self.lang_embeddings(langs[:, new])
        if token_type_ids is not None:  # XLM adds token types through the word embeddings
            hidden = hidden + self.embeddings(token_type_ids[:, new])
        keep = keep[:, new, None].to(hidden.dtype)  # (batch, new positions, 1)
        hidden = F.dropout(self.layer_norm_emb(hidden), self.dropout, self.training) * keep
        # (1, 1, new, seq) causal or (batch, 1, 1, seq) padding mask, additive; None when nothing is masked
        mask = causal_mask(seq - past, seq, hidden.device, hidden.dtype) if attn_mask is None else \
            padding_mask(attn_mask, hidden.dtype)
        head_masks = expand_head_mask(head_mask, self.config.n_layers, hidden.dtype)
        states, weights = [], []
        for i in range(self.config.n_layers):
            if self.training and getattr(self.config, "layerdrop", 0.0) > 0 and \
                    torch.rand([]) < self.config.layerdrop:
                continue  # LayerDrop: the skipped layer adds no hidden state either
            states.append(hidden)
            hidden, layer_weights = self._layer(i, hidden, mask, want_weights, cache, head_masks[i])
            hidden = hidden * keep
            weights.append(layer_weights)
        states.append(hidden)
        return pack(BaseModelOutput, return_dict, self.config, last_hidden_state=hidden,
                    hidden_states=tuple(states) if want_hidden else None,
                    attentions=tuple(weights) if want_weights else None)

    def _masks(self, input_ids, attention_mask, lengths, batch, seq, inputs_embeds):
        """(positions kept (batch, seq), the keys attended to (the same) or None when causal): from
        attention_mask, else `lengths`, else the non-padding tokens (counted, so padding is read as trailing)."""
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is not None:
            keep = attention_mask
        else:
            if lengths is None:
                lengths = ((input_ids != self.config.pad_index).sum(dim=1) if input_ids is not None
                           else torch.full((batch,), seq, device=device))
            if lengths.shape[0] != batch or int(lengths.max()) > seq:
                raise ValueError(f"lengths must give one length <= {seq} per row of the batch ({batch} rows).")
            keep = torch.arange(seq, device=device)[None] < lengths[:, None]
        # causal mode attends to every earlier position, padding included, as XLM does
        return keep, None if self.config.causal else keep

    def _layer(self, i, hidden, mask, want_weights, cache, head_mask):
        """One layer: attention then feed-forward, each added to the residual, with the LayerNorms after the sums
        (or before the sublayers with `pre_norm`)."""
        pre_norm = getattr(self.config, "pre_norm", False)
        attended, weights = self.attentions[i](self.layer_norm1[i](hidden) if pre_norm else hidden, mask,
                                               want_weights, cache, head_mask)
        hidden = hidden + F.dropout(attended, self.dropout, self.training)
        if not pre_norm:
            hidden = self.layer_norm1[i](hidden)
        hidden = hidden + self.ffns[i](self.layer_norm2[i](hidden) if pre_norm else hidden)
        return (hidden if pre_norm else self.layer_norm2[i](hidden)), weights


class XLMPredLayer(nn.Module):
    """Vocabulary scores: a linear `proj` tied to the word embeddings, or (asm=True) torch's adaptive log-softmax,
    whose scores are log-probabilities."""

    def __init__(self, config):
        super().__init__()
        self.asm, self.n_words, self.pad_index = bool(config.asm), config.vocab_size, config.pad_index
        if not self.asm:
            self.proj = nn.Linear(config.emb_dim, config.vocab_size)
            return
        cutoffs, div_value = getattr(config, "asm_cutoffs", None), getattr(config, "asm_div_value", None)
        if cutoffs is None or div_value is None:
            raise ConfigError("asm=True needs asm_cutoffs (increasing token ids below vocab_size) and asm_div_value "
                              "in the config; set both, or asm=False.")
        self.proj = nn.AdaptiveLogSoftmaxWithLoss(config.emb_dim, config.vocab_size, cutoffs=list(cutoffs),
                                                  div_value=div_value, head_bias=True)

    def forward(self, hidden, labels=None):
        """-> (scores, loss or None); the loss is the cross-entropy at each position, -100 ignored."""
        if not self.asm:
            scores = self.proj(hidden)
            loss = None if labels is None else F.cross_entropy(scores.reshape(-1, scores.shape[-1]),
                                                               labels.reshape(-1))
            return scores, loss
        flat = hidden.reshape(-1, hidden.shape[-1])  # the adaptive softmax reads (rows, dim)
        scores = self.proj.log_prob(flat).view(*hidden.shape[:-1], -1)
        if labels is None:
            return scores, None
        kept = labels.reshape(-1) != -100
        return scores, self.proj(flat[kept], labels.reshape(-1)[kept]).loss


class XLMWithLMHeadModel(XLMPreTrainedModel, GenerationMixin):
    """Scores over the vocabulary at every position (`pred_layer`). generate() appends the mask token to the text
    so far and reads the scores at it, re-reading the whole text at each step, as Transformers does."""

    _tied_weights_keys = {"pred_layer.proj.weight": "transformer.embeddings.weight"}
    model_class = XLMModel

    def __init__(self, config):
        super().__init__(config)
        self.transformer = self.model_class(config)
        self.pred_layer = XLMPredLayer(config)
        self.post_init()

    @property
    def _keys_to_ignore_on_load_unexpected(self):
        # Transformers ties a stray `proj.weight` onto the adaptive softmax and saves it
        return (r"position_ids$", *((r"^pred_layer\.proj\.weight$",) if self.config.asm else ()))

    def tied_weight_pairs(self):
        return {} if self.config.asm else super().tied_weight_pairs()

    def get_output_embeddings(self):
        return self.pred_layer.proj

    def set_output_embeddings(self, new_embeddings):
        self.pred_layer.proj = new_embeddings

    def forward(self, input_ids=None, attention_mask=None, langs=None, token_type_ids=None, position_ids=None,
                lengths=None, cache=None, inputs_embeds=None, labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep=0, head_mask=None, **kwargs):
        out = self.transformer(input_ids, attention_mask, langs, token_type_ids, position_ids, lengths, cache,
                               inputs_embeds, output_attentions, output_hidden_states, True, head_mask, **kwargs)
        logits, loss = self.pred_layer(keep_last_logits(out.last_hidden_state, logits_to_keep), labels)
        return pack(MaskedLMOutput, return_dict, self.config, loss=loss, logits=logits, **extras(out))

    def _prepare_cache_for_generation(self, *args, **kwargs):
        """No cache: each step re-reads the text with a fresh mask token at its end."""

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, **kwargs):
        """The text so far plus the mask token (`config.mask_token_id`), in language `config.lang_id`; the
        attention mask, positions and token types are dropped (the model derives them), as in Transformers."""
        mask_token = input_ids.new_full((input_ids.shape[0], 1), self.config.mask_token_id)
        input_ids = torch.cat([input_ids, mask_token], dim=1)
        langs = None if self.config.lang_id is None else torch.full_like(input_ids, self.config.lang_id)
        dropped = ("token_type_ids", "attention_mask", "position_ids", "cache", "past_key_values", "labels",
                   "is_first_iteration", "inputs_embeds")
        return {"input_ids": input_ids, "langs": langs, **{k: v for k, v in kwargs.items() if k not in dropped}}
