"""OpenAI GPT (the first GPT): a post-norm causal decoder with learned positions and Conv1D weights.

It has no key/value cache (neither has Transformers' version): each call attends over the whole sequence it is given.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import Activation, run_activation
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import (DecoderDoubleHeads, DecoderLM, LastTokenClassification, causal_lm_output, double_heads_output,
                     finish, last_token_classifier_output, start_decoder)
from ..layers import ACTIVATIONS, capturing, check_position_limit, merge_heads
from ..modeling import PreTrainedModel
from ..outputs import BaseModelOutput, CausalLMOutput, OpenAIGPTDoubleHeadsModelOutput, SequenceClassifierOutput
from .gpt2 import CausalLMHead, Conv1D, prune_fused_heads

# OpenAI GPT names its activations differently: its "gelu" is the tanh approximation.
_ACTIVATIONS = {"relu": F.relu, "silu": F.silu, "swish": F.silu, "gelu": ACTIVATIONS["gelu_new"]}


class OpenAIGPTConfig(PretrainedConfig):
    model_type = "openai-gpt"
    attribute_map = {"max_position_embeddings": "n_positions", "hidden_size": "n_embd",
                     "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}
    defaults = dict(
        vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12, afn="gelu", resid_pdrop=0.1,
        embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5, initializer_range=0.02, summary_type="cls_index",
        summary_use_proj=True, summary_activation=None, summary_proj_to_labels=True, summary_first_dropout=0.1,
        tie_word_embeddings=True,
    )


class Attention(nn.Module):
    """Causal self-attention. Scores of future positions are replaced by -1e4 (not added to) and padding adds the
    dtype minimum, as in the original; with no padding and no weights wanted SDPA computes the same thing."""

    def __init__(self, config: OpenAIGPTConfig):
        super().__init__()
        width, self.n_head = config.n_embd, config.n_head
        if width % self.n_head:
            raise ConfigError(f"n_embd={width} is not a multiple of n_head={self.n_head}.")
        self.split_size, self.n_positions = width, config.n_positions
        self.scale, self.pruned_heads = True, set()  # scale: scores are divided by sqrt(head_dim)
        self.c_attn = Conv1D(3 * width, width)
        self.c_proj = Conv1D(width, width)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_fused_heads(self, heads, self.split_size // self.n_head, "n_head")

    def forward(self, x, causal, pad_mask, want_weights):
        batch, seq, _ = x.shape
        qkv = self.c_attn(x).view(batch, seq, 3, self.n_head, self.split_size // self.n_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (batch, heads, seq, head_dim)
        dropout_p = self.attn_dropout.p if self.training else 0.0
        if pad_mask is None and not want_weights:
            out, weights = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True), None
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(v.shape[-1])
            scores = scores * causal + -1e4 * (1 - causal)
            weights = (scores if pad_mask is None else scores + pad_mask).softmax(dim=-1)
            out = torch.matmul(F.dropout(weights, dropout_p) if dropout_p else weights, v)
        out = self.c_proj(merge_heads(out))
        return (self.resid_dropout(out) if self.training else out), weights


class MLP(nn.Module):
    def __init__(self, n_state: int, config: OpenAIGPTConfig):
        super().__init__()
        self.c_fc = Conv1D(n_state, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, n_state)
        if config.afn not in _ACTIVATIONS:
            raise ConfigError(f"afn={config.afn!r} is not one of {sorted(_ACTIVATIONS)}.")
        self.act = Activation(config.afn, _ACTIVATIONS[config.afn])
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        out = self.c_proj(run_activation(self.act, self.c_fc(x)))
        return self.dropout(out) if self.training else out


class Block(nn.Module):
    """Attention and MLP, each followed by its residual sum and a LayerNorm (post-norm)."""

    def __init__(self, config: OpenAIGPTConfig):
        super().__init__()
        self.attn = Attention(config)
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(4 * config.n_embd, config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def forward(self, x, causal, pad_mask, want_weights):
        attn_out, weights = self.attn(x, causal, pad_mask, want_weights)
        n = self.ln_1(x + attn_out)
        return self.ln_2(n + self.mlp(n)), weights


class OpenAIGPTPreTrainedModel(PreTrainedModel):
    config_class = OpenAIGPTConfig
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load_unexpected = (r"\.attn\.bias$",)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, Conv1D):
            module.weight.normal_(mean=0.0, std=self.config.initializer_range)
            module.bias.zero_()
        elif isinstance(module, OpenAIGPTModel):
            module.position_ids.copy_(torch.arange(module.position_ids.shape[0]))


class OpenAIGPTModel(OpenAIGPTPreTrainedModel):
    def __init__(self, config: OpenAIGPTConfig):
        super().__init__(config)
        self.tokens_embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.positions_embed = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.register_buffer("position_ids", torch.arange(config.n_positions), persistent=False)
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.h[layer].attn.prune_heads(heads)

    def get_input_embeddings(self):
        return self.tokens_embed

    def set_input_embeddings(self, value):
        self.tokens_embed = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        want_weights, want_hidden = start_decoder(self, kwargs, input_ids, inputs_embeds, output_attentions,
                                                  output_hidden_states)
        config = self.config
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        if inputs_embeds is None:
            inputs_embeds = self.tokens_embed(input_ids.reshape(-1, shape[-1]))
        if position_ids is None:
            check_position_limit(shape[-1], config.n_positions)
            position_ids = self.position_ids[None, : shape[-1]]
        hidden = inputs_embeds + self.positions_embed(position_ids)
        if token_type_ids is not None:
            hidden = hidden + self.tokens_embed(token_type_ids.reshape(-1, token_type_ids.shape[-1]))
        hidden = self.drop(hidden) if self.training else hidden
        seq = shape[-1]
        causal = torch.ones(seq, seq, dtype=hidden.dtype, device=hidden.device).tril()
        pad_mask = None
        if attention_mask is not None and (capturing() or not bool(attention_mask.all())):
            keep = attention_mask.reshape(-1, 1, 1, attention_mask.shape[-1]).to(hidden.dtype)
            pad_mask = (1.0 - keep) * torch.finfo(hidden.dtype).min  # (batch, 1, 1, seq)
        all_hidden, all_weights = [], []
        for block in self.h:
            all_hidden.append(hidden)
            hidden, weights = block(hidden, causal, pad_mask, want_weights)
            all_weights.append(weights)
        hidden = hidden.view(*shape, hidden.shape[-1])
        out = BaseModelOutput(last_hidden_state=hidden, hidden_states=(*all_hidden, hidden) if want_hidden else None,
                              attentions=tuple(all_weights) if want_weights else None)
        return finish(out, return_dict, config)


class OpenAIGPTLMHeadModel(DecoderLM, CausalLMHead, OpenAIGPTPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.tokens_embed.weight"}
    decoder_class = OpenAIGPTModel

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, logits_to_keep=0, **kwargs):
        return causal_lm_output(self, locals(), CausalLMOutput)


class OpenAIGPTDoubleHeadsModel(DecoderDoubleHeads, OpenAIGPTPreTrainedModel):
    """Language modelling plus a multiple-choice score read at each choice's `mc_token_ids` token."""

    # Tied the other way round from the LM head model (the embeddings follow lm_head), as in Transformers.
    _tied_weights_keys = {"transformer.tokens_embed.weight": "lm_head.weight"}
    get_output_embeddings = CausalLMHead.get_output_embeddings
    set_output_embeddings = CausalLMHead.set_output_embeddings
    decoder_class = OpenAIGPTModel

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, mc_token_ids=None, labels=None, mc_labels=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        return double_heads_output(self, locals(), OpenAIGPTDoubleHeadsModelOutput)


class OpenAIGPTForSequenceClassification(LastTokenClassification, OpenAIGPTPreTrainedModel):
    """Classifies a sequence by the logits of its last non-padding token."""

    decoder_class = OpenAIGPTModel

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        return last_token_classifier_output(self, locals(), self.score, SequenceClassifierOutput)
