"""Reformer: a reversible-residual Transformer with LSH and chunk-local self-attention and axial position embeddings.

Attribute paths are the checkpoint keys (`reformer.encoder.layers.0.attention.self_attention.query_key.weight`,
`reformer.embeddings.position_embeddings.weights.0`). The attention layers are in reformer_attention.py, the
reversible layers and the cache in reformer_layers.py, the task heads in reformer_heads.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration import PretrainedConfig
from ..errors import ConfigError
from ..heads import check_kwargs, finish
from ..layers import capturing, output_flags
from ..modeling import PreTrainedModel
from ..outputs import ModelOutput, Tensor
from .reformer_layers import (AxialPositionEmbeddings, ReformerDynamicCache, ReformerEmbeddings, ReformerLayer,
                              run_reversible)


class ReformerConfig(PretrainedConfig):
    model_type = "reformer"
    defaults = dict(
        attention_head_size=64, attn_layers=["local", "lsh", "local", "lsh", "local", "lsh"], axial_norm_std=1.0,
        axial_pos_embds=True, axial_pos_shape=[64, 64], axial_pos_embds_dim=[64, 192], chunk_size_lm_head=0,
        eos_token_id=2, feed_forward_size=512, hash_seed=None, hidden_act="relu", hidden_dropout_prob=0.05,
        hidden_size=256, initializer_range=0.02, is_decoder=False, layer_norm_eps=1e-12, local_num_chunks_before=1,
        local_num_chunks_after=0, local_attention_probs_dropout_prob=0.05, local_attn_chunk_length=64,
        lsh_attn_chunk_length=64, lsh_attention_probs_dropout_prob=0.0, lsh_num_chunks_before=1,
        lsh_num_chunks_after=0, max_position_embeddings=4096, num_attention_heads=12, num_buckets=None,
        num_hashes=1, vocab_size=320, tie_word_embeddings=False, use_cache=True, classifier_dropout=None,
        bos_token_id=None, pad_token_id=0,
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attn_layers = list(self.attn_layers)
        self.num_hidden_layers = len(self.attn_layers)  # one layer per entry of attn_layers
        self.axial_pos_shape = tuple(self.axial_pos_shape)
        self.axial_pos_embds_dim = tuple(self.axial_pos_embds_dim)


def chunk_lengths(config) -> tuple[int, int]:
    """(least common multiple, minimum) of the chunk lengths of the attention types in use."""
    kinds = set(config.attn_layers)
    if not kinds or not kinds <= {"lsh", "local"}:
        raise ConfigError(f"attn_layers={config.attn_layers}: use at least one layer, each 'lsh' or 'local'.")
    lengths = {kind: getattr(config, f"{kind}_attn_chunk_length") for kind in kinds}
    return math.lcm(*lengths.values()), min(lengths.values())


class ReformerModelOutput(ModelOutput):
    last_hidden_state: Tensor = None
    past_buckets_states: object = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class ReformerModelWithLMHeadOutput(ModelOutput):
    loss: Tensor = None
    logits: Tensor = None
    past_buckets_states: object = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class ReformerEncoder(nn.Module):
    """The reversible layers, then LayerNorm and dropout over both streams side by side (2 * hidden_size)."""

    def __init__(self, config):
        super().__init__()
        self.dropout = config.hidden_dropout_prob
        self.layers = nn.ModuleList([ReformerLayer(config, i) for i in range(config.num_hidden_layers)])
        self.layer_norm = nn.LayerNorm(2 * config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, attention_mask=None, num_hashes=None, past_buckets_states=None,
                use_cache=False, orig_sequence_length=None, output_hidden_states=False, output_attentions=False):
        """-> (output (batch, seq, 2 * hidden), hidden states, attention weights, cache)."""
        if use_cache and past_buckets_states is None:
            past_buckets_states = ReformerDynamicCache()
        attn_output, hidden_states, run = run_reversible(
            self.layers, hidden_states, output_hidden_states, output_attentions, attention_mask=attention_mask,
            num_hashes=num_hashes, past_buckets_states=past_buckets_states, use_cache=use_cache,
            orig_sequence_length=orig_sequence_length)
        out = self.layer_norm(torch.cat([attn_output, hidden_states], dim=-1))
        out = F.dropout(out, p=self.dropout, training=self.training)
        return out, run.hidden_states, run.attentions, past_buckets_states if use_cache else None


class ReformerPreTrainedModel(PreTrainedModel):
    config_class = ReformerConfig
    base_model_prefix = "reformer"

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, AxialPositionEmbeddings):
            for weight in module.weights:
                weight.normal_(std=self.config.axial_norm_std)


class ReformerModel(ReformerPreTrainedModel):
    """Embeddings and the reversible encoder; inputs that do not fill the last chunk are padded in eval (and refused
    in training), the output cut back to the input length."""

    def __init__(self, config: ReformerConfig):
        super().__init__(config)
        chunk_lengths(config)
        self.embeddings = ReformerEmbeddings(config)
        self.encoder = ReformerEncoder(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, num_hashes=None,
                past_buckets_states=None, use_cache=None, output_hidden_states=None, output_attentions=None,
                return_dict=None, **kwargs):
        check_kwargs(self, kwargs)
        want_weights, want_hidden = output_flags(self.config, output_attentions, output_hidden_states)
        # the cache serves decoding; in training it would keep every layer's input, which reversibility avoids
        if use_cache and capturing():
            raise ValueError("Reformer's cache (past_buckets_states) is a Python object that torch.jit.trace and "
                             "torch.export cannot return; record the model with use_cache=False.")
        default = self.config.use_cache and not capturing()  # a recorded graph returns tensors only
        use_cache = (use_cache if use_cache is not None else default) and not self.training
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        if len(shape) != 2:
            raise ValueError(f"input_ids must be (batch, seq); got shape {tuple(shape)}.")
        if past_buckets_states is not None and self.training:
            raise ValueError("past_buckets_states is for decoding; call model.eval() first.")
        seq = shape[-1]
        fresh = past_buckets_states is None or len(past_buckets_states) == 0
        multiple, shortest = chunk_lengths(self.config)
        padding = (multiple - seq % multiple) % multiple if fresh and seq > shortest else 0
        if padding:
            if self.training:
                raise ValueError(f"In training the sequence length ({seq}) must be a multiple of the chunk length "
                                 f"{multiple} (least common multiple of the layers' chunk lengths); pad the inputs "
                                 f"to {seq + padding}.")
            input_ids, inputs_embeds, attention_mask, position_ids = self._pad_to_chunks(
                input_ids, inputs_embeds, attention_mask, position_ids, padding)
        start = past_buckets_states.get_start_idx() if past_buckets_states is not None else 0
        hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids, inputs_embeds=inputs_embeds,
                                 start_idx_pos_encodings=start)
        out, states, weights, cache = self.encoder(
            hidden, attention_mask=attention_mask, num_hashes=num_hashes, past_buckets_states=past_buckets_states,
            use_cache=use_cache, orig_sequence_length=seq, output_hidden_states=want_hidden,
            output_attentions=want_weights)
        output = ReformerModelOutput(
            last_hidden_state=out[:, :seq], past_buckets_states=cache,
            hidden_states=tuple(states) if want_hidden else None,
            attentions=tuple(weights) if want_weights else None)
        return finish(output, return_dict, self.config)

    def _pad_to_chunks(self, input_ids, inputs_embeds, attention_mask, position_ids, padding: int):
        """Inputs extended by `padding` masked pad tokens (at the next positions) to fill the last chunk."""
        reference = input_ids if input_ids is not None else inputs_embeds
        batch, seq = reference.shape[:2]
        device = reference.device
        pad_ids = torch.full((batch, padding), self.config.pad_token_id, dtype=torch.long, device=device)
        if attention_mask is None:
            attention_mask = torch.ones(batch, seq, dtype=torch.bool, device=device)
        attention_mask = torch.cat([attention_mask, attention_mask.new_zeros(batch, padding)], dim=-1)
        if input_ids is not None:
            input_ids = torch.cat([input_ids, pad_ids], dim=-1)
        else:
            inputs_embeds = torch.cat([inputs_embeds, self.get_input_embeddings()(pad_ids)], dim=-2)
        if position_ids is not None:
            ahead = torch.arange(seq, seq + padding, dtype=position_ids.dtype, device=device).expand(batch, padding)
            position_ids = torch.cat([position_ids, ahead], dim=-1)
        return input_ids, inputs_embeds, attention_mask, position_ids


__all__ = ["ReformerConfig", "ReformerModel", "ReformerPreTrainedModel", "ReformerModelOutput",
           "ReformerModelWithLMHeadOutput", "ReformerDynamicCache"]
