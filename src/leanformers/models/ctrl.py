"""CTRL: a pre-norm causal decoder with fixed sinusoidal positions and embeddings scaled by sqrt(width)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..activations import prune_attention_heads
from ..cache import resolve_cache
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import DecoderLM, LastTokenClassification, finish, start_decoder
from ..layers import attention, check_position_limit, decoder_masks, merge_heads
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, SequenceClassifierOutput
from .gpt2 import CausalLMHead


class CTRLConfig(PretrainedConfig):
    model_type = "ctrl"
    attribute_map = {"max_position_embeddings": "n_positions", "hidden_size": "n_embd",
                     "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}
    defaults = dict(
        vocab_size=246534, n_positions=256, n_embd=1280, dff=8192, n_layer=48, n_head=16, resid_pdrop=0.1,
        embd_pdrop=0.1, layer_norm_epsilon=1e-6, initializer_range=0.02, use_cache=True, tie_word_embeddings=True,
    )


def sinusoid_table(positions: int, width: int, dtype=torch.float32) -> torch.Tensor:
    """(positions, width) table: sines of the even-indexed angles, then cosines of the odd-indexed ones."""
    pos = torch.arange(positions, dtype=torch.int64).to(dtype)[:, None]
    dims = torch.arange(width, dtype=torch.int64).to(dtype)[None, :]
    angles = pos * (1 / torch.pow(10000, (2 * (dims // 2)) / width))
    return torch.cat([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=-1)


class MultiHeadAttention(nn.Module):
    def __init__(self, config: CTRLConfig, layer_idx: int = 0):
        super().__init__()
        width, self.num_heads = config.n_embd, config.n_head
        if width % self.num_heads:
            raise ConfigError(f"n_embd={width} is not a multiple of n_head={self.num_heads}.")
        self.head_dim, self.layer_idx = width // self.num_heads, layer_idx
        self.d_model_size, self.pruned_heads = width, set()  # d_model_size: num_heads * head_dim, less once pruned
        self.Wq = nn.Linear(width, width)
        self.Wk = nn.Linear(width, width)
        self.Wv = nn.Linear(width, width)
        self.dense = nn.Linear(width, width)

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_attention_heads(self, self, heads, ("Wq", "Wk", "Wv"), self, "dense", "num_heads", "d_model_size",
                              self.head_dim)

    def forward(self, x, mask, is_causal, cache, want_weights):
        batch, seq, _ = x.shape
        q, k, v = (proj(x).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.Wq, self.Wk, self.Wv))  # (batch, heads, seq, head_dim)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        out, weights = attention(q, k, v, mask, 0.0, want_weights, self.head_dim ** -0.5, None, is_causal)
        return self.dense(merge_heads(out)), weights


class EncoderLayer(nn.Module):
    """Pre-norm attention and ReLU feed-forward (`ffn.0`, `ffn.2`), each added back to its input."""

    def __init__(self, config: CTRLConfig, layer_idx: int = 0):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(config, layer_idx)
        self.ffn = nn.Sequential(nn.Linear(config.n_embd, config.dff), nn.ReLU(), nn.Linear(config.dff, config.n_embd))
        self.layernorm1 = nn.LayerNorm(config.n_embd, eps=1e-6)  # fixed in the original, not the config's epsilon
        self.layernorm2 = nn.LayerNorm(config.n_embd, eps=1e-6)
        self.dropout1 = nn.Dropout(config.resid_pdrop)
        self.dropout2 = nn.Dropout(config.resid_pdrop)

    def forward(self, x, mask, is_causal, cache, want_weights):
        attn_out, weights = self.multi_head_attention(self.layernorm1(x), mask, is_causal, cache, want_weights)
        x = x + (self.dropout1(attn_out) if self.training else attn_out)
        ffn_out = self.ffn(self.layernorm2(x))
        return x + (self.dropout2(ffn_out) if self.training else ffn_out), weights


class CTRLPreTrainedModel(PreTrainedModel):
    config_class = CTRLConfig
    base_model_prefix = "transformer"

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, CTRLModel):
            module.pos_encoding.copy_(sinusoid_table(self.config.n_positions, self.config.n_embd))


class CTRLModel(CTRLPreTrainedModel):
    def __init__(self, config: CTRLConfig):
        super().__init__(config)
        self.d_model_size, self.num_layers = config.n_embd, config.n_layer
        self.w = nn.Embedding(config.vocab_size, config.n_embd)
        self.dropout = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([EncoderLayer(config, i) for i in range(config.n_layer)])
        self.layernorm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.register_buffer("pos_encoding", sinusoid_table(config.n_positions, config.n_embd), persistent=False)
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.h[layer].multi_head_attention.prune_heads(heads)

    def get_input_embeddings(self):
        return self.w

    def set_input_embeddings(self, value):
        self.w = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        want_weights, want_hidden = start_decoder(self, kwargs, input_ids, inputs_embeds, output_attentions,
                                                  output_hidden_states)
        config = self.config
        if inputs_embeds is None:
            inputs_embeds = self.w(input_ids)
        batch, seq = inputs_embeds.shape[:2]
        cache, use_cache = resolve_cache(config, past_key_values, cache, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            check_position_limit(past + seq, config.n_positions)
            position_ids = torch.arange(past, past + seq, device=inputs_embeds.device)[None]
        scale = math.sqrt(self.d_model_size)
        hidden = inputs_embeds * scale + self.pos_encoding[position_ids].to(inputs_embeds.dtype)
        if token_type_ids is not None:
            hidden = hidden + self.w(token_type_ids) * scale
        hidden = self.dropout(hidden) if self.training else hidden
        if attention_mask is not None and attention_mask.dim() < 4:
            attention_mask = attention_mask.reshape(batch, -1)
        mask, is_causal = decoder_masks(attention_mask, seq, past, explicit=want_weights, dtype=hidden.dtype,
                                        device=hidden.device)[None]
        all_hidden, all_weights = [], []
        for layer in self.h:
            all_hidden.append(hidden)
            hidden, weights = layer(hidden, mask, is_causal, cache, want_weights)
            all_weights.append(weights)
        hidden = self.layernorm(hidden)
        out = BaseModelOutputWithPast(
            last_hidden_state=hidden, past_key_values=cache if use_cache else None,
            hidden_states=(*all_hidden, hidden) if want_hidden else None,
            attentions=tuple(all_weights) if want_weights else None)
        return finish(out, return_dict, config)


class CTRLLMHeadModel(DecoderLM, CausalLMHead, CTRLPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.w.weight"}
    decoder_class, output_class, lm_head_bias = CTRLModel, CausalLMOutputWithPast, True
    _supports_compiled_decoding = True  # generation/compiled.py: its forward takes a SlotCache and a 4-D mask


class CTRLForSequenceClassification(LastTokenClassification, CTRLPreTrainedModel):
    """Classifies a sequence by the logits of its last non-padding token."""

    decoder_class, output_class, score_name = CTRLModel, SequenceClassifierOutput, "classifier"
