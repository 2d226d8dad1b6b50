"""Longformer: RoBERTa with sliding-window self-attention and a few global tokens, for long documents.

Each layer attends `attention_window / 2` tokens on each side of every token (sliding_window.py, memory linear in
the length); tokens marked in `global_attention_mask` attend to, and are attended by, every token through their own
projections (`query_global`, `key_global`, `value_global`). Inputs are padded to a multiple of the largest window
and the padding is removed from the outputs, as in Transformers. The task heads are in longformer_heads.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..chunking import apply_in_chunks
from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import check_kwargs
from ..layers import capturing, merge_heads, output_flags, split_heads
from ..outputs import ModelOutput, Tensor, pack
from ..sliding_window import (gather_positions, global_query_attention, global_slots, scatter_positions,
                              sliding_window_attention)
from .bert import BertIntermediate, BertOutput, BertPooler, BertSelfOutput, WordEmbeddings, check_encoder_inputs
from .roberta import RobertaEmbeddings, RobertaLMHead, RobertaPreTrainedModel

LongformerLMHead = RobertaLMHead  # the same layers and weight names


class LongformerConfig(PretrainedConfig):
    model_type = "longformer"
    defaults = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                    initializer_range=0.02, layer_norm_eps=1e-12, attention_window=512, sep_token_id=2,
                    pad_token_id=1, bos_token_id=0, eos_token_id=2, onnx_export=False, tie_word_embeddings=True)


# ---------------------------------------------------------------------- outputs (with the global attention weights)
class LongformerBaseModelOutput(ModelOutput):
    last_hidden_state: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    global_attentions: tuple | None = None


class LongformerBaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: Tensor = None
    pooler_output: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    global_attentions: tuple | None = None


class _HeadOutput(ModelOutput):
    loss: Tensor = None
    logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    global_attentions: tuple | None = None


class LongformerMaskedLMOutput(_HeadOutput):
    pass


class LongformerSequenceClassifierOutput(_HeadOutput):
    pass


class LongformerTokenClassifierOutput(_HeadOutput):
    pass


class LongformerMultipleChoiceModelOutput(_HeadOutput):
    pass


class LongformerQuestionAnsweringModelOutput(ModelOutput):
    loss: Tensor = None
    start_logits: Tensor = None
    end_logits: Tensor = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    global_attentions: tuple | None = None


def layer_windows(config) -> list[int]:
    """The attention window of each layer (config.attention_window: one int, or one per layer), checked."""
    window, layers = config.attention_window, config.num_hidden_layers
    windows = [window] * layers if isinstance(window, int) else list(window)
    if len(windows) != layers:
        raise ConfigError(f"attention_window has {len(windows)} values but the model has num_hidden_layers={layers}"
                          f"; give one window per layer, or a single int for all of them.")
    for index, size in enumerate(windows):
        if not isinstance(size, int) or size <= 0 or size % 2:
            raise ConfigError(f"attention_window of layer {index} is {size!r}; it must be a positive even int (the "
                              f"window covers size / 2 tokens on each side of a token).")
    return windows


def first_positions(x, length: int, dim: int):
    """The first `length` positions of x along `dim`. A recorded graph copies them (index_select): a slice of a
    symbolic length would tie the graph to whether the example input needed window padding."""
    if capturing():
        return x.index_select(dim, torch.arange(length, device=x.device))
    return x.narrow(dim, 0, length)


# ---------------------------------------------------------------------- layers
class LongformerSelfAttention(nn.Module):
    """Sliding-window attention (query/key/value) plus global attention (query_global/key_global/value_global)."""

    def __init__(self, config, layer_id: int = 0):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ConfigError(f"hidden_size={config.hidden_size} must be a multiple of num_attention_heads.")
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        for name in ("query", "key", "value", "query_global", "key_global", "value_global"):
            setattr(self, name, nn.Linear(config.hidden_size, config.hidden_size))
        self.one_sided_attn_window_size = layer_windows(config)[layer_id] // 2
        self.layer_id, self.embed_dim = layer_id, config.hidden_size
        self.dropout = config.attention_probs_dropout_prob  # a probability, as in Longformer's own module

    def forward(self, hidden, masked, is_global, slots=None, want_weights=False):
        """hidden (batch, seq, hidden); masked / is_global (batch, seq) bool; slots: global_slots(is_global) or
        None when no token is global. -> (output, local weights, global weights (batch, heads, count, seq))."""
        dropout_p = self.dropout if self.training else 0.0
        scale = math.sqrt(self.head_dim)
        q = split_heads(self.query(hidden), self.num_heads) / scale  # (batch, heads, seq, head_dim)
        k, v = (split_heads(proj(hidden), self.num_heads) for proj in (self.key, self.value))
        global_kv = None
        if slots is not None:  # every query also sees the global tokens, through the local projections
            positions, valid = slots
            global_kv = (gather_positions(k, positions, 2), gather_positions(v, positions, 2), valid)
        out, weights = sliding_window_attention(q, k, v, self.one_sided_attn_window_size, masked | is_global,
                                                global_kv, dropout_p, want_weights)
        out, global_weights = merge_heads(out), None  # (batch, seq, hidden)
        if slots is not None:  # global tokens attend to everything, through their own projections
            positions, valid = slots
            chosen = gather_positions(hidden, positions, 1)  # (batch, count, hidden)
            q_global = split_heads(self.query_global(chosen), self.num_heads) / scale
            k_global, v_global = (split_heads(proj(hidden), self.num_heads)
                                  for proj in (self.key_global, self.value_global))
            global_out, global_weights = global_query_attention(q_global, k_global, v_global, valid, masked,
                                                                dropout_p)
            out = scatter_positions(out, positions, valid, merge_heads(global_out))
        return out, weights, global_weights


class LongformerAttention(nn.Module):
    def __init__(self, config, layer_id: int = 0):
        super().__init__()
        self.self = LongformerSelfAttention(config, layer_id)
        self.output = BertSelfOutput(config)

    def forward(self, hidden, masked, is_global, slots=None, want_weights=False):
        out, weights, global_weights = self.self(hidden, masked, is_global, slots, want_weights)
        return self.output(out, hidden), weights, global_weights


class LongformerLayer(nn.Module):
    def __init__(self, config, layer_id: int = 0):
        super().__init__()
        self.attention = LongformerAttention(config, layer_id)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1

    def forward(self, hidden, masked, is_global, slots=None, want_weights=False):
        hidden, weights, global_weights = self.attention(hidden, masked, is_global, slots, want_weights)
        out = apply_in_chunks(self.ff_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)
        return out, weights, global_weights

    def ff_chunk(self, hidden):
        return self.output(self.intermediate(hidden), hidden)


class LongformerEncoder(nn.Module):
    """The layers over the window-padded sequence; hidden states and local weights are cut back to `length`
    positions, the global weights (batch, heads, padded seq, count) are kept whole, as in Transformers."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([LongformerLayer(config, i) for i in range(config.num_hidden_layers)])

    def forward(self, hidden, masked, is_global, length: int, want_weights=False, want_hidden=False,
                may_be_global=True):
        if capturing():  # the graph cannot depend on which tokens are global: a slot for every position
            slots = global_slots(is_global, every_position=True) if may_be_global else None
        else:
            slots = global_slots(is_global) if bool(is_global.any()) else None
        states, weights, global_weights = [hidden], [], []
        for layer in self.layer:
            hidden, w, g = layer(hidden, masked, is_global, slots, want_weights)
            states.append(hidden)
            weights.append(first_positions(w, length, 2) if want_weights else None)
            global_weights.append(g.transpose(2, 3) if want_weights and slots is not None else None)
        return LongformerBaseModelOutput(
            last_hidden_state=first_positions(hidden, length, 1),
            hidden_states=tuple(first_positions(state, length, 1) for state in states) if want_hidden else None,
            attentions=tuple(weights) if want_weights else None,
            global_attentions=tuple(global_weights) if want_weights and slots is not None else None)


# ---------------------------------------------------------------------- models
class LongformerPreTrainedModel(RobertaPreTrainedModel):
    config_class = LongformerConfig
    base_model_prefix = "longformer"


def merged_attention_mask(attention_mask, global_attention_mask, shape, device):
    """0 for padding, 1 for local attention, 2 for global attention (Transformers' encoding of the two masks)."""
    mask = attention_mask if attention_mask is not None else torch.ones(shape, dtype=torch.long, device=device)
    return mask if global_attention_mask is None else mask * (global_attention_mask + 1)


class LongformerModel(WordEmbeddings, LongformerPreTrainedModel):
    """The bare encoder. `global_attention_mask` (batch, seq): 1 for tokens with global attention."""

    def __init__(self, config, add_pooling_layer: bool = True):
        super().__init__(config)
        config.attention_window = layer_windows(config)  # one per layer, stored like Transformers does
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = LongformerEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, global_attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        check_encoder_inputs(input_ids, inputs_embeds, None)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        hidden = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        batch, length = hidden.shape[:2]
        mask = merged_attention_mask(attention_mask, global_attention_mask, (batch, length), hidden.device)
        window = max(self.config.attention_window)  # whole windows; the padding is cut from the outputs
        pad = (length + window - 1) // window * window - length  # written so that export sees a multiple of window
        if capturing() or pad:  # a recorded graph pads (by 0 if so) for any length
            hidden, mask = F.pad(hidden, (0, 0, 0, pad)), F.pad(mask, (0, pad))
        out = self.encoder(hidden, mask <= 0, mask == 2, length, want_weights, want_hidden,
                           may_be_global=global_attention_mask is not None)
        pooled = self.pooler(out.last_hidden_state) if self.pooler is not None else None
        return pack(LongformerBaseModelOutputWithPooling, return_dict, self.config,
                    last_hidden_state=out.last_hidden_state, pooler_output=pooled, hidden_states=out.hidden_states,
                    attentions=out.attentions, global_attentions=out.global_attentions)
