"""Llama family in one file: Llama, Mistral (sliding-window attention) and Qwen2 (biased q/k/v projections).

Pre-norm decoder with RMSNorm, rotary positions (with the rope_scaling kinds of Llama 3 and others), grouped-query
attention (`num_key_value_heads`) and a SwiGLU feed-forward. The three differ only in config switches; each has its
own config class and model_type so checkpoints of either library load as themselves. The task heads (and the
Mistral / Qwen2 model classes) are in llama_heads.py.
"""

from __future__ import annotations

import torch
from torch import nn

from ..activations import activation_module, run_activation
from ..cache import resolve_cache
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..layers import (decoder_masks, few_rows_linear, grouped_attention, merge_heads, output_flags, rms_norm,
                      rope_config, rope_frequencies, rotary_cos_sin, rotary_tables, rotate)
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutputWithPast
from .gpt2 import check_kwargs, finish

_COMMON = dict(hidden_act="silu", initializer_range=0.02, rms_norm_eps=1e-6, use_cache=True,
               tie_word_embeddings=False, rope_parameters=None, attention_dropout=0.0)


class LlamaConfig(PretrainedConfig):
    model_type = "llama"
    defaults = dict(_COMMON, vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=None, max_position_embeddings=2048, bos_token_id=1,
                    eos_token_id=2, pretraining_tp=1, attention_bias=False, mlp_bias=False, head_dim=None)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if "head_dim" in self.defaults and self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        # One `rope_parameters` dict replaces the older rope_theta / rope_scaling fields, as in Transformers 5.
        self.rope_parameters = rope_config(self)
        for legacy in ("rope_scaling", "rope_theta"):
            self.__dict__.pop(legacy, None)


class MistralConfig(LlamaConfig):
    model_type = "mistral"
    defaults = dict(_COMMON, vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, head_dim=None,
                    max_position_embeddings=4096 * 32, bos_token_id=1, eos_token_id=2, sliding_window=4096)


class Qwen2Config(LlamaConfig):
    model_type = "qwen2"
    defaults = dict(_COMMON, vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=32768,
                    use_sliding_window=False, sliding_window=4096, max_window_layers=28, layer_types=None)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.use_sliding_window:
            self.sliding_window = None
        if self.layer_types is None:
            self.layer_types = ["sliding_attention" if self.sliding_window is not None and i >= self.max_window_layers
                                else "full_attention" for i in range(self.num_hidden_layers)]


def layer_windows(config) -> list:
    """Sliding window of each layer (None = full attention): none for Llama, every layer for Mistral, the
    "sliding_attention" entries of `layer_types` for Qwen2."""
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if config.model_type == "llama" or window is None:
        return [None] * config.num_hidden_layers
    if types is None:
        return [window] * config.num_hidden_layers
    return [window if kind == "sliding_attention" else None for kind in types]


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.variance_epsilon)


class LlamaRotaryEmbedding(nn.Module):
    """cos/sin of the rotary angles for given positions; "dynamic" and "longrope" adapt to the sequence length."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.params = rope_config(config)
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.original_max_seq_len, self.rope_type = config.max_position_embeddings, self.params["rope_type"]
        self.register_buffer("inv_freq", torch.empty(0), persistent=False)
        self.register_buffer("original_inv_freq", torch.empty(0), persistent=False)
        self.reset_frequencies()

    def reset_frequencies(self):
        with torch.device("cpu"):  # computed on the meta device, they would make torch import its compiler stack
            inv_freq, self.attention_scaling = rope_frequencies(self.params, self.head_dim, self.original_max_seq_len)
        # two tensors, not one under two names: a traced module cannot hold a buffer twice
        self.inv_freq, self.original_inv_freq = inv_freq.to(self.inv_freq.device), inv_freq.to(self.inv_freq.device).clone()
        self.max_seq_len_cached = self.original_max_seq_len

    def forward(self, x, position_ids):
        kind = self.params["rope_type"]
        if kind in ("dynamic", "longrope"):
            self._adapt(kind, position_ids.max() + 1)
        return rotary_cos_sin(self.inv_freq, position_ids, self.attention_scaling, x.dtype)

    def _adapt(self, kind, seq_len):
        if kind == "longrope":  # long factors once the sequence exceeds the original length, short ones below
            long = seq_len > self.params["original_max_position_embeddings"]
            trained = torch.tensor(self.params["original_max_position_embeddings"] + 1)
            source = rope_frequencies(self.params, self.head_dim, self.original_max_seq_len, trained)[0] if long \
                else self.original_inv_freq
            self.inv_freq = source.to(self.inv_freq.device)
        elif seq_len > self.max_seq_len_cached:  # dynamic NTK: a larger base for a longer sequence
            inv_freq, self.attention_scaling = rope_frequencies(self.params, self.head_dim, self.original_max_seq_len,
                                                                seq_len.cpu())
            self.inv_freq, self.max_seq_len_cached = inv_freq.to(self.inv_freq.device), seq_len
        elif seq_len < self.original_max_seq_len < self.max_seq_len_cached:  # back to the trained frequencies
            self.inv_freq, self.max_seq_len_cached = self.original_inv_freq, self.original_max_seq_len


class LlamaAttention(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int = 0):
        super().__init__()
        self.layer_idx, hidden = layer_idx, config.hidden_size
        self.num_heads, self.num_key_value_heads = config.num_attention_heads, config.num_key_value_heads
        if self.num_heads % self.num_key_value_heads:
            raise ConfigError(f"num_attention_heads={self.num_heads} is not a multiple of "
                              f"num_key_value_heads={self.num_key_value_heads}.")
        self.head_dim = getattr(config, "head_dim", None) or hidden // self.num_heads
        self.scaling, self.num_key_value_groups = self.head_dim ** -0.5, self.num_heads // self.num_key_value_heads
        self.attention_dropout = config.attention_dropout
        self.sliding_window = layer_windows(config)[layer_idx]
        qkv_bias = True if config.model_type == "qwen2" else getattr(config, "attention_bias", False)
        out_bias = False if config.model_type == "qwen2" else getattr(config, "attention_bias", False)
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, self.num_key_value_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, self.num_key_value_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, hidden, bias=out_bias)

    def forward(self, hidden, cos, sin, mask, is_causal, cache, want_weights):
        batch, seq, _ = hidden.shape
        q, k, v = (few_rows_linear(hidden, proj).view(batch, seq, -1, self.head_dim).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))  # each (batch, heads, seq, dim)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)  # cos, sin: the tables of rotary_tables
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        out, weights = grouped_attention(q, k, v, mask, is_causal, self.scaling,
                                         self.attention_dropout if self.training else 0.0, want_weights)
        return few_rows_linear(merge_heads(out), self.o_proj), weights


class LlamaMLP(nn.Module):
    """SwiGLU: down(act(gate(x)) * up(x))."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        bias, self.hidden_size, self.intermediate_size = (getattr(config, "mlp_bias", False), config.hidden_size,
                                                          config.intermediate_size)
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=bias)
        self.act_fn = activation_module(config.hidden_act)

    def forward(self, x):
        gate, up = few_rows_linear(x, self.gate_proj), few_rows_linear(x, self.up_proj)
        return few_rows_linear(run_activation(self.act_fn, gate) * up, self.down_proj)


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int = 0):
        super().__init__()
        self.hidden_size, self.self_attn = config.hidden_size, LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden, cos, sin, masks, cache, want_weights):
        mask, is_causal = masks[self.self_attn.sliding_window]
        attn_out, weights = self.self_attn(self.input_layernorm(hidden), cos, sin, mask, is_causal, cache,
                                           want_weights)
        hidden = hidden + attn_out
        return hidden + self.mlp(self.post_attention_layernorm(hidden)), weights


class LlamaPreTrainedModel(PreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, LlamaRMSNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, LlamaRotaryEmbedding):
            module.reset_frequencies()


class LlamaModel(LlamaPreTrainedModel):
    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.padding_idx, self.vocab_size = config.pad_token_id, config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        config = self.config
        want_weights, want_hidden = output_flags(config, output_attentions, output_hidden_states)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        hidden = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        seq = hidden.shape[1]
        passed = cache is not None or past_key_values is not None
        cache, use_cache = resolve_cache(config, past_key_values, cache, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past, past + seq, device=hidden.device)[None]
        masks = decoder_masks(attention_mask, seq, past, layer_windows(config), want_weights, hidden.dtype,
                              hidden.device)
        cos, sin = rotary_tables(*self.rotary_emb(hidden, position_ids))
        all_hidden, all_weights = [], []
        for layer in self.layers:
            all_hidden.append(hidden)
            hidden, weights = layer(hidden, cos, sin, masks, cache, want_weights)
            all_weights.append(weights)
        hidden = self.norm(hidden)
        keep_cache = use_cache or (passed and config.model_type == "llama")  # Llama returns a cache it was given
        out = BaseModelOutputWithPast(
            last_hidden_state=hidden, past_key_values=cache if keep_cache else None,
            hidden_states=(*all_hidden, hidden) if want_hidden else None,
            attentions=tuple(all_weights) if want_weights else None)
        return finish(out, return_dict, config)
