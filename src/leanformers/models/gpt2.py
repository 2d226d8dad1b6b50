"""GPT-2 (and DistilGPT-2): a pre-norm causal decoder with learned positions.

Its projections are `Conv1D`: a linear layer whose weight is stored (in, out), the layout of GPT-2 checkpoints, so the
state dict matches them with no renaming. Also home of what the other decoders share: Conv1D, the multiple-choice
`SequenceSummary`, the `CausalLMHead` mixin and the handling of forward() keyword arguments.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..cache import resolve_cache
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..layers import (activation, attention, causal_lm_loss, check_position_limit, classifier_dropout_prob,
                      decoder_masks, keep_last_logits, last_token_logits, merge_heads, output_flags,
                      sequence_classification_loss, span_logits, span_loss, token_loss)
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
        return torch.addmm(self.bias, x.reshape(-1, self.nx), self.weight).view(*x.shape[:-1], self.nf)


class SequenceSummary(nn.Module):
    """One vector per sequence (last, first, mean or the `cls_index` token), optionally projected: the
    multiple-choice head of the GPT double-heads models. Its only weights are `summary.weight/bias`."""

    def __init__(self, config):
        super().__init__()
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type == "attn":
            raise ConfigError("summary_type='attn' is not implemented; use 'last', 'first', 'mean' or 'cls_index'.")
        self.summary = nn.Identity()
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = nn.Linear(config.hidden_size, config.num_labels if to_labels else config.hidden_size)
        name = getattr(config, "summary_activation", None)
        self.activation = activation(name) if name else nn.Identity()
        first, last = getattr(config, "summary_first_dropout", 0), getattr(config, "summary_last_dropout", 0)
        self.first_dropout = nn.Dropout(first) if first and first > 0 else nn.Identity()
        self.last_dropout = nn.Dropout(last) if last and last > 0 else nn.Identity()

    def forward(self, hidden_states, cls_index=None):
        if self.summary_type == "last":
            output = hidden_states[:, -1]
        elif self.summary_type == "first":
            output = hidden_states[:, 0]
        elif self.summary_type == "mean":
            output = hidden_states.mean(dim=1)
        else:  # cls_index: the token at cls_index (default: the last one) of each sequence
            if cls_index is None:
                cls_index = torch.full_like(hidden_states[..., :1, :], hidden_states.shape[-2] - 1, dtype=torch.long)
            else:
                cls_index = cls_index[..., None, None].expand(*cls_index.shape, 1, hidden_states.shape[-1])
            output = hidden_states.gather(-2, cls_index).squeeze(-2)
        return self.last_dropout(self.activation(self.summary(self.first_dropout(output))))


# accepted and ignored: cache_position (positions come from the cache), num_items_in_batch (read by the losses),
# use_cache (generation passes it to every model, even those without a cache)
_TOLERATED_KWARGS = ("cache_position", "num_items_in_batch", "use_cache")


def check_kwargs(model, kwargs: dict):
    """Reject keyword arguments a forward does not know (a typo must not be ignored silently)."""
    unknown = sorted(k for k in kwargs if k not in _TOLERATED_KWARGS)
    if unknown:
        raise TypeError(f"{type(model).__name__}.forward() got unexpected keyword arguments {unknown}.")


def base_inputs(values: dict, names: tuple) -> dict:
    """Keyword arguments for the base model, picked by name from a head's forward() arguments (its locals())."""
    return {**{name: values[name] for name in names if name in values}, "return_dict": True}


def finish(output, return_dict, config):
    """The output object, or its tuple when return_dict (or the config's default) is false."""
    return output if (return_dict if return_dict is not None else config.return_dict) else output.to_tuple()


def prefer_column_major_output(model):
    """Store the output projection's (vocab, width) weight column-major: same Parameter, same values, transposed
    memory. On CPU the vocabulary projection `x @ W.T` is then a plain (width, vocab) product, which the matrix
    kernels stream about twice as fast at decoding batch sizes; the tied input embedding shares it unchanged."""
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    if weight is None or weight.dim() != 2 or weight.device.type != "cpu" or not weight.is_contiguous():
        return
    with torch.no_grad():
        weight.data = weight.data.t().contiguous().t()


class CausalLMHead:
    """Mixin of the language-model heads (listed first among the bases): the `lm_head` projection onto the
    vocabulary is the output embedding, stored column-major on CPU, and the model can generate()."""

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def tie_weights(self):
        super().tie_weights()
        prefer_column_major_output(self)


# ---------------------------------------------------------------------- GPT-2 modules
class GPT2Attention(nn.Module):
    """Causal self-attention with a fused q/k/v projection (`c_attn`) and an output projection (`c_proj`)."""

    def __init__(self, config: GPT2Config, layer_idx: int = 0):
        super().__init__()
        width, self.num_heads = config.hidden_size, config.num_attention_heads
        if width % self.num_heads:
            raise ConfigError(f"n_embd={width} is not a multiple of n_head={self.num_heads}.")
        self.head_dim, self.layer_idx = width // self.num_heads, layer_idx
        self.scale = self.head_dim ** -0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer_idx + 1)
        self.upcast = config.reorder_and_upcast_attn  # scores in float32 whatever the model dtype
        self.c_attn = Conv1D(3 * width, width)
        self.c_proj = Conv1D(width, width)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden, mask, is_causal, cache, want_weights):
        batch, seq, _ = hidden.shape
        qkv = self.c_attn(hidden).view(batch, seq, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (batch, heads, seq, head_dim)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        dtype = q.dtype
        if self.upcast and dtype != torch.float32:
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
        self.act = activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden):
        hidden = self.c_proj(self.act(self.c_fc(hidden)))
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
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config, i) for i in range(config.num_hidden_layers)])
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.post_init()

    def get_input_embeddings(self):
        return self.wte

    def set_input_embeddings(self, value):
        self.wte = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        config = self.config
        want_weights, want_hidden = output_flags(config, output_attentions, output_hidden_states)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
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
            attentions=tuple(all_weights) if want_weights else None, cross_attentions=() if want_weights else None)
        return finish(out, return_dict, config)


_BASE_INPUTS = ("input_ids", "past_key_values", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds",
                "use_cache", "output_attentions", "output_hidden_states", "cache")


class GPT2LMHeadModel(CausalLMHead, GPT2PreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep=0, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(**base_inputs(locals(), _BASE_INPUTS))
        logits = self.lm_head(keep_last_logits(out.last_hidden_state, logits_to_keep))
        loss = None if labels is None else causal_lm_loss(logits, labels, kwargs.get("num_items_in_batch"))
        return finish(CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict, self.config)


class GPT2DoubleHeadsModel(CausalLMHead, GPT2PreTrainedModel, GenerationMixin):
    """Language modelling plus a multiple-choice score read at each choice's `mc_token_ids` token."""

    _tied_weights_keys = GPT2LMHeadModel._tied_weights_keys

    def __init__(self, config: GPT2Config):
        config.num_labels = 1  # the choice head scores one number per choice
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.multiple_choice_head = SequenceSummary(config)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, mc_token_ids=None, labels=None, mc_labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, cache=None,
                **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(**base_inputs(locals(), _BASE_INPUTS))
        hidden = out.last_hidden_state
        lm_logits = self.lm_head(hidden)
        mc_logits = self.multiple_choice_head(hidden, mc_token_ids).squeeze(-1)
        mc_loss = None if mc_labels is None else F.cross_entropy(mc_logits.view(-1, mc_logits.shape[-1]),
                                                                  mc_labels.view(-1))
        lm_loss = None if labels is None else causal_lm_loss(lm_logits, labels)
        return finish(GPT2DoubleHeadsModelOutput(
            loss=lm_loss, mc_loss=mc_loss, logits=lm_logits, mc_logits=mc_logits,
            past_key_values=out.past_key_values, hidden_states=out.hidden_states, attentions=out.attentions),
            return_dict, self.config)


class GPT2ForSequenceClassification(GPT2PreTrainedModel):
    """Classifies a sequence by the logits of its last non-padding token."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = GPT2Model(config)
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self.transformer(**base_inputs(locals(), _BASE_INPUTS))
        logits = last_token_logits(self.score(out.last_hidden_state), input_ids, self.config.pad_token_id)
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return finish(SequenceClassifierOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions), return_dict, self.config)


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
        out = self.transformer(**base_inputs(locals(), _BASE_INPUTS))
        logits = self.classifier(self.dropout(out.last_hidden_state))
        return finish(TokenClassifierOutput(loss=token_loss(logits, labels), logits=logits,
                                            hidden_states=out.hidden_states, attentions=out.attentions),
                      return_dict, self.config)


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
        return finish(QuestionAnsweringModelOutput(
            loss=span_loss(start_logits, end_logits, start_positions, end_positions), start_logits=start_logits,
            end_logits=end_logits, hidden_states=out.hidden_states, attentions=out.attentions), return_dict,
            self.config)
