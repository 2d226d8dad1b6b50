"""GPT-2 (and DistilGPT-2): a pre-norm causal decoder with learned positions.

Its projections are `Conv1D`: a linear layer whose weight is stored (in, out), the layout of GPT-2 checkpoints, so the
state dict matches them with no renaming. Also home of what the other decoders share: Conv1D and the `CausalLMHead`
mixin (the head logic and forward() argument handling are in heads.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ..activations import activation_module, pruneable_heads, run_activation
from ..cache import resolve_cache
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import (DECODER_ARGS, DecoderDoubleHeads, DecoderLM, LastTokenClassification, base_inputs,
                     check_kwargs, decoder_output, finish, start_decoder)
from ..layers import (attention, check_position_limit, classifier_dropout_prob, decoder_masks, linear,
                      merge_heads, span_logits, span_loss, token_loss)
from ..modeling import PreTrainedModel
from ..outputs import (BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions,
                       GPT2DoubleHeadsModelOutput, QuestionAnsweringModelOutput, SequenceClassifierOutputWithPast,
                       TokenClassifierOutput)


class GPT2Config(PretrainedConfig):
    model_type = "gpt2"
    attribute_map = {"hidden_size": "n_embd", "max_position_embeddings": "n_positions",
                     "num_attention_heads": "n_head", "num_hidden_layers": "n_layer"}
    defaults = dict(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=None,
        activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5,
        initializer_range=0.02, summary_type="cls_index", summary_use_proj=True, summary_activation=None,
        summary_proj_to_labels=True, summary_first_dropout=0.1, scale_attn_weights=True, use_cache=True,
        bos_token_id=50256, eos_token_id=50256, scale_attn_by_inverse_layer_idx=False,
        reorder_and_upcast_attn=False, tie_word_embeddings=True,
    )


# ---------------------------------------------------------------------- pieces shared by the decoders
class Conv1D(nn.Module):
    """Linear layer with its weight stored (in_features, out_features); `Conv1D(nf=out, nx=in)` as in Transformers."""

    def __init__(self, nf: int, nx: int):
        super().__init__()
        self.nf, self.nx = nf, nx
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x):
        # the (out, in) transpose: row-major, for `linear`'s few-rows form, once `prefer_decoding_layout` ran
        return linear(x, self.weight.t(), self.bias)


def prune_conv1d(layer: Conv1D, index, dim: int) -> Conv1D:
    """A new Conv1D keeping the output columns (dim=1) or input rows (dim=0) of its (in, out) weight in `index`."""
    index = index.to(layer.weight.device)
    weight = layer.weight.detach().index_select(dim, index)
    pruned = Conv1D(weight.shape[1], weight.shape[0]).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        pruned.weight.copy_(weight)
        pruned.bias.copy_(layer.bias.detach()[index] if dim == 1 else layer.bias.detach())
    return pruned


def prune_fused_heads(attention, heads, head_dim: int, count: str):
    """Removes the heads numbered in `heads` (numbers of the unpruned layer) from an attention whose Conv1D `c_attn`
    outputs the queries, keys and values (each `split_size` wide) and whose `c_proj` reads the heads; `count` names
    its head-count attribute. `attention.pruned_heads` (a set) records the heads gone."""
    heads, index = pruneable_heads(heads, getattr(attention, count), head_dim, attention.pruned_heads)
    if not heads:
        return
    width = attention.split_size
    attention.c_attn = prune_conv1d(attention.c_attn, torch.cat([index, index + width, index + 2 * width]), dim=1)
    attention.c_proj = prune_conv1d(attention.c_proj, index, dim=0)
    setattr(attention, count, getattr(attention, count) - len(heads))
    attention.split_size = head_dim * getattr(attention, count)
    attention.pruned_heads = attention.pruned_heads | heads


def prefer_decoding_layout(model):
    """Store every Conv1D weight on CPU column-major: same Parameter, same values and shape, transposed memory.
    Its (out, in) transpose is then row-major, which `linear` multiplies by a few rows (a decoding step of a
    small batch) about twice as fast as the (in, out) layout of the checkpoint."""
    with torch.no_grad():
        for module in model.modules():
            weight = module.weight if isinstance(module, Conv1D) else None
            if weight is not None and weight.device.type == "cpu" and weight.is_contiguous():
                weight.data = weight.data.t().contiguous().t()


class CausalLMHead:
    """Mixin of the language-model heads (listed first among the bases): `lm_head` is the output embedding, the
    Conv1D weights are stored for decoding (`prefer_decoding_layout`), and the model can generate()."""

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def tie_weights(self):
        super().tie_weights()
        prefer_decoding_layout(self)


# ---------------------------------------------------------------------- GPT-2 modules
class GPT2Attention(nn.Module):
    """Causal self-attention with a fused q/k/v projection (`c_attn`) and an output projection (`c_proj`)."""

    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        width, self.num_heads = config.hidden_size, config.num_attention_heads
        if width % self.num_heads:
            raise ConfigError(f"n_embd={width} is not a multiple of n_head={self.num_heads}.")
        self.head_dim, self.layer_idx = width // self.num_heads, layer_idx
        self.embed_dim = self.split_size = width  # split_size: num_heads * head_dim, less once pruned
        self.scale_attn_weights = config.scale_attn_weights
        self.scale_attn_by_inverse_layer_idx = config.scale_attn_by_inverse_layer_idx
        self.scale = self.head_dim ** -0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer_idx + 1)
        self.reorder_and_upcast_attn = config.reorder_and_upcast_attn  # scores in float32 whatever the dtype
        self.c_attn = Conv1D(3 * width, width)
        self.c_proj = Conv1D(width, width)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)
        self.pruned_heads = set()

    def prune_heads(self, heads):
        """Removes the attention heads numbered in `heads` (numbers of the unpruned layer)."""
        prune_fused_heads(self, heads, self.head_dim, "num_heads")

    def forward(self, hidden, mask, is_causal, cache, want_weights):
        batch, seq, _ = hidden.shape
        qkv = self.c_attn(hidden).view(batch, seq, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (batch, heads, seq, head_dim)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        dtype = q.dtype
        if self.reorder_and_upcast_attn and dtype != torch.float32:
            q, k, v = q.float(), k.float(), v.float()
            mask = mask.float() if mask is not None and mask.is_floating_point() else mask
        out, weights = attention(q, k, v, mask, self.attn_dropout.p if self.training else 0.0, want_weights,
                                 self.scale, None, is_causal)
        out = self.c_proj(merge_heads(out.to(dtype)))
        return (self.resid_dropout(out) if self.training else out), weights


class GPT2MLP(nn.Module):
    def __init__(self, intermediate_size: int, config: GPT2Config):
        super().__init__()
        self.c_fc = Conv1D(intermediate_size, config.hidden_size)
        self.c_proj = Conv1D(config.hidden_size, intermediate_size)
        self.act = activation_module(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden):
        hidden = self.c_proj(run_activation(self.act, self.c_fc(hidden)))
        return self.dropout(hidden) if self.training else hidden


class GPT2Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        width = config.hidden_size
        self.ln_1 = nn.LayerNorm(width, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(width, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config.n_inner if config.n_inner is not None else 4 * width, config)

    def forward(self, hidden, mask, is_causal, cache, want_weights):
        attn_out, weights = self.attn(self.ln_1(hidden), mask, is_causal, cache, want_weights)
        hidden = attn_out + hidden
        return hidden + self.mlp(self.ln_2(hidden)), weights


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    # causal-mask buffers that old checkpoints saved; the mask is computed now
    _keys_to_ignore_on_load_unexpected = (r"\.attn\.bias$", r"\.attn\.masked_bias$")

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, Conv1D):
            module.weight.normal_(mean=0.0, std=std)
            module.bias.zero_()
        if isinstance(module, (GPT2Attention, GPT2MLP)):
            # residual projections scaled by 1/sqrt(2 * layers), as in the GPT-2 paper
            module.c_proj.weight.normal_(mean=0.0, std=std / (2 * self.config.n_layer) ** 0.5)


class GPT2Model(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        if config.add_cross_attention:
            raise ConfigError("GPT-2 with add_cross_attention=True (a decoder inside an encoder-decoder model) is not "
                              "supported; load the model with add_cross_attention=False.")
        self.embed_dim = config.hidden_size
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, i) for i in range(config.num_hidden_layers)])
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.post_init()

    def _prune_heads(self, heads_to_prune):
        for layer, heads in heads_to_prune.items():
            self.h[layer].attn.prune_heads(heads)

    def get_input_embeddings(self):
        return self.wte

    def set_input_embeddings(self, value):
        self.wte = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        want_weights, want_hidden = start_decoder(self, kwargs, input_ids, inputs_embeds, output_attentions,
                                                  output_hidden_states)
        config = self.config
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1]
        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids.reshape(-1, shape[-1]))
        inputs_embeds = inputs_embeds.reshape(-1, shape[-1], inputs_embeds.shape[-1])  # (batch, seq, width)
        cache, use_cache = resolve_cache(config, past_key_values, cache, use_cache)
        past = cache.get_seq_length() if cache is not None else 0
        seq = shape[-1]
        if position_ids is None:
            check_position_limit(past + seq, config.max_position_embeddings)
            position_ids = torch.arange(past, past + seq, device=inputs_embeds.device)[None]
        hidden = inputs_embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            hidden = hidden + self.wte(token_type_ids.reshape(-1, seq))
        hidden = self.drop(hidden) if self.training else hidden
        if attention_mask is not None and attention_mask.dim() < 4:
            attention_mask = attention_mask.reshape(hidden.shape[0], -1)
        mask, is_causal = decoder_masks(attention_mask, seq, past, explicit=want_weights, dtype=hidden.dtype,
                                        device=hidden.device)[None]
        all_hidden, all_weights = [], []
        for block in self.h:
            all_hidden.append(hidden)
            hidden, weights = block(hidden, mask, is_causal, cache, want_weights)
            all_weights.append(weights)
        hidden = self.ln_f(hidden).view(*shape, hidden.shape[-1])
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden, past_key_values=cache if use_cache else None,
            hidden_states=(*all_hidden, hidden) if want_hidden else None,
            attentions=tuple(all_weights) if want_weights else None)
        return finish(out, return_dict, config)


class GPT2LMHeadModel(DecoderLM, CausalLMHead, GPT2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}
    decoder_class, output_class = GPT2Model, CausalLMOutputWithCrossAttentions
    _supports_compiled_decoding = True  # generation/compiled.py: its forward takes a SlotCache and a 4-D mask


class GPT2DoubleHeadsModel(DecoderDoubleHeads, CausalLMHead, GPT2PreTrainedModel, GenerationMixin):
    """Language modelling plus a multiple-choice score read at each choice's `mc_token_ids` token."""

    _tied_weights_keys = GPT2LMHeadModel._tied_weights_keys
    decoder_class, output_class = GPT2Model, GPT2DoubleHeadsModelOutput


class GPT2ForSequenceClassification(LastTokenClassification, GPT2PreTrainedModel):
    """Classifies a sequence by the logits of its last non-padding token."""

    decoder_class, output_class = GPT2Model, SequenceClassifierOutputWithPast


class GPT2ForTokenClassification(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config)
        self.dropout = nn.Dropout(classifier_dropout_prob(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(**base_inputs(locals(), DECODER_ARGS))
        logits = self.classifier(self.dropout(out.last_hidden_state))
        return decoder_output(TokenClassifierOutput, out, return_dict, self.config, loss=token_loss(logits, labels),
                              logits=logits)


class GPT2ForQuestionAnswering(GPT2PreTrainedModel):
    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=False,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True)
        start_logits, end_logits = span_logits(self.qa_outputs(out.last_hidden_state))
        return decoder_output(QuestionAnsweringModelOutput, out, return_dict, self.config, start_logits=start_logits,
                              end_logits=end_logits,
                              loss=span_loss(start_logits, end_logits, start_positions, end_positions))
