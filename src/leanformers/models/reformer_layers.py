"""Reformer's building blocks: its decoding cache, axial position embeddings, the reversible layer and the encoder
whose backward pass recomputes each layer's input from its output instead of keeping activations."""

from __future__ import annotations

from contextlib import contextmanager
from functools import reduce
from operator import mul

import torch
from torch import nn
from torch.nn import functional as F

from ..activations import activation_module
from ..chunking import apply_in_chunks
from ..errors import ConfigError
from ..layers import capturing
from .reformer_attention import LocalSelfAttention, LSHSelfAttention

ATTENTION_TYPES = {"lsh": LSHSelfAttention, "local": LocalSelfAttention}


class ReformerDynamicCache:
    """Per attention layer: the normed hidden states entering it and, for LSH layers, their buckets
    (batch, heads, hashes, seq); empty for layers that have none yet."""

    def __init__(self, _distributed_cache_data=None):
        self.buckets_cache: list[torch.Tensor] = []
        self.states_cache: list[torch.Tensor] = []
        for buckets, states in _distributed_cache_data or ():
            self.buckets_cache.append(buckets)
            self.states_cache.append(states)

    def __len__(self) -> int:
        return len(self.states_cache)

    def update(self, buckets, states, layer_idx: int, cache_kwargs=None):
        """Append the new positions' buckets and states of layer `layer_idx` -> (all its buckets, all its states)."""
        if len(self.states_cache) <= layer_idx:
            self.states_cache.append(states)
        else:
            self.states_cache[layer_idx] = torch.cat([self.states_cache[layer_idx], states], dim=1)
        if len(self.buckets_cache) <= layer_idx:
            self.buckets_cache.append(buckets if buckets is not None else states.new_zeros(0, dtype=torch.long))
        elif buckets is not None:
            past = self.buckets_cache[layer_idx]
            self.buckets_cache[layer_idx] = torch.cat([past, buckets], dim=-1) if past.numel() else buckets
        return self.buckets_cache[layer_idx], self.states_cache[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.get_start_idx()

    def get_start_idx(self) -> int:
        """How many positions the cache holds (where the next token's position starts)."""
        return self.states_cache[0].shape[1] if len(self) else 0

    def reorder_cache(self, beam_idx):
        for cache in (self.buckets_cache, self.states_cache):
            for i, tensor in enumerate(cache[:len(self)]):
                if tensor.numel():
                    cache[i] = tensor.index_select(0, beam_idx.to(tensor.device))


class AxialPositionEmbeddings(nn.Module):
    """Position embeddings factorised over `axial_pos_shape`: position p = (i, j) gets weights.0[i] ++ weights.1[j]."""

    def __init__(self, config):
        super().__init__()
        self.axial_pos_shape, self.dropout = tuple(config.axial_pos_shape), config.hidden_dropout_prob
        if sum(config.axial_pos_embds_dim) != config.hidden_size:
            raise ConfigError(f"axial_pos_embds_dim={config.axial_pos_embds_dim} must sum to hidden_size="
                              f"{config.hidden_size}.")
        if len(config.axial_pos_embds_dim) != len(self.axial_pos_shape):
            raise ConfigError("axial_pos_embds_dim and axial_pos_shape need the same number of axes.")
        self.weights = nn.ParameterList()
        for axis, dim in enumerate(config.axial_pos_embds_dim):
            shape = [1] * len(self.axial_pos_shape)
            shape[axis] = self.axial_pos_shape[axis]
            self.weights.append(nn.Parameter(torch.ones(*shape, dim)))

    def forward(self, position_ids):
        batch, seq = position_ids.shape
        size = reduce(mul, self.axial_pos_shape)
        if self.training:  # training covers the whole grid, in order
            if size != seq:
                raise ValueError(f"In training the sequence length must equal the product of axial_pos_shape "
                                 f"{self.axial_pos_shape} = {size}; got {seq}. Pad the inputs to {size} or change "
                                 f"axial_pos_shape.")
            grid = torch.cat([w.expand(batch, *self.axial_pos_shape, w.shape[-1]) for w in self.weights], dim=-1)
            if self.dropout > 0:  # drops whole columns of the first axis, as the original does
                grid = F.dropout2d(grid.transpose(2, 1), p=self.dropout, training=True).transpose(2, 1)
            return grid.reshape(batch, seq, -1)
        if not capturing() and int(position_ids.max()) >= size:  # a check on values, made in eager runs
            raise ValueError(f"Positions up to {int(position_ids.max())} do not fit axial_pos_shape "
                             f"{self.axial_pos_shape} (product {size}); shorten the input.")
        parts, rest = [], position_ids
        for axis in reversed(range(len(self.axial_pos_shape))):  # position -> its index along each axis
            rest, index = rest.div(self.axial_pos_shape[axis], rounding_mode="floor"), rest % self.axial_pos_shape[axis]
            parts.insert(0, self.weights[axis].reshape(self.axial_pos_shape[axis], -1)[index])
        return torch.cat(parts, dim=-1)


class PositionEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = config.hidden_dropout_prob
        self.embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, position_ids):
        return F.dropout(self.embedding(position_ids), p=self.dropout, training=self.training)


class ReformerEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.max_position_embeddings, self.dropout = config.max_position_embeddings, config.hidden_dropout_prob
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = (AxialPositionEmbeddings if config.axial_pos_embds else PositionEmbeddings)(config)

    def forward(self, input_ids=None, position_ids=None, inputs_embeds=None, start_idx_pos_encodings=0):
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch, seq = inputs_embeds.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(start_idx_pos_encodings, start_idx_pos_encodings + seq,
                                        device=inputs_embeds.device).expand(batch, seq)
        if not torch.jit.is_tracing() and position_ids.shape[-1] > self.max_position_embeddings:  # traced: a tensor
            raise ValueError(f"Sequence length {position_ids.shape[-1]} is above max_position_embeddings="
                             f"{self.max_position_embeddings}; shorten the input.")
        hidden = F.dropout(inputs_embeds, p=self.dropout, training=self.training)
        return hidden + self.position_embeddings(position_ids)


class ReformerSelfOutput(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = config.hidden_dropout_prob
        self.dense = nn.Linear(config.num_attention_heads * config.attention_head_size, config.hidden_size, bias=False)

    def forward(self, hidden_states):
        return F.dropout(self.dense(hidden_states), p=self.dropout, training=self.training)


class ReformerAttention(nn.Module):
    """Pre-norm self-attention (LSH or local, as `attn_layers[layer_id]` says); records its input in the cache."""

    def __init__(self, config, layer_id: int = 0):
        super().__init__()
        self.layer_id = layer_id
        kind = config.attn_layers[layer_id]
        if kind not in ATTENTION_TYPES or not set(config.attn_layers) <= set(ATTENTION_TYPES):
            raise ConfigError(f"attn_layers={config.attn_layers}: each entry must be 'lsh' or 'local'.")
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attention = ATTENTION_TYPES[kind](config, layer_id)
        self.output = ReformerSelfOutput(config)

    def forward(self, hidden_states, attention_mask=None, num_hashes=None, past_buckets_states=None,
                use_cache=False, orig_sequence_length=None, output_attentions=False, buckets=None):
        """-> (output, attention weights or (), this input's LSH buckets or None)."""
        normed = self.layer_norm(hidden_states)
        out, probs, buckets = self.self_attention(normed, attention_mask=attention_mask, num_hashes=num_hashes,
                                                  buckets=buckets, past_buckets_states=past_buckets_states,
                                                  use_cache=use_cache, output_attentions=output_attentions)
        cache = past_buckets_states
        if use_cache and cache is not None:
            first = len(cache) <= self.layer_id  # the prompt: drop the positions added to fill the last chunk
            cached = buckets[..., :orig_sequence_length] if first and buckets is not None else buckets
            cache.update(cached, normed[:, :orig_sequence_length], self.layer_id)
        return self.output(out), probs, buckets


class ChunkReformerFeedForward(nn.Module):
    """LayerNorm, dense, dropout, activation, dense, dropout; over chunks of `chunk_size_feed_forward` positions."""

    def __init__(self, config):
        super().__init__()
        self.chunk_size_feed_forward, self.seq_len_dim = config.chunk_size_feed_forward, 1
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense = ReformerFeedForwardDense(config)
        self.output = ReformerFeedForwardOutput(config)

    def forward(self, attention_output):
        return apply_in_chunks(self.forward_chunk, self.chunk_size_feed_forward, self.seq_len_dim, attention_output)

    def forward_chunk(self, hidden_states):
        return self.output(self.dense(self.layer_norm(hidden_states)))


class ReformerFeedForwardDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout, self.act_fn = config.hidden_dropout_prob, activation_module(config.hidden_act)
        self.dense = nn.Linear(config.hidden_size, config.feed_forward_size)

    def forward(self, hidden_states):
        return self.act_fn(F.dropout(self.dense(hidden_states), p=self.dropout, training=self.training))


class ReformerFeedForwardOutput(ReformerSelfOutput):
    def __init__(self, config):
        nn.Module.__init__(self)
        self.dropout = config.hidden_dropout_prob
        self.dense = nn.Linear(config.feed_forward_size, config.hidden_size)


def _rng_state(device):
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


@contextmanager
def _replayed_rng(state, device):
    """Run with the random state of an earlier pass (same dropout masks), leaving the current state untouched."""
    if state is None:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], device)
        yield


class ReformerLayer(nn.Module):
    """Reversible residual layer on two streams: attn_out = prev + Attention(hidden); hidden += FeedForward(attn_out).
    Its input can be computed back from its output, which is what the encoder's backward pass does."""

    def __init__(self, config, layer_id: int = 0):
        super().__init__()
        self.attention = ReformerAttention(config, layer_id)
        self.feed_forward = ChunkReformerFeedForward(config)

    def forward(self, prev_attn_output, hidden_states, attention_mask=None, num_hashes=None,
                past_buckets_states=None, use_cache=False, orig_sequence_length=None, output_attentions=False,
                record=None):
        """-> (attention stream, hidden stream, attention weights, buckets); `record` (a dict) receives what the
        backward pass needs to recompute this layer: the buckets and the random states before each branch."""
        random = record is not None and self.training  # dropout: replay the same masks in backward
        if record is not None:
            record["attention_rng"] = _rng_state(hidden_states.device) if random else None
        attn, probs, buckets = self.attention(hidden_states, attention_mask, num_hashes, past_buckets_states,
                                              use_cache, orig_sequence_length, output_attentions)
        attn_output = prev_attn_output + attn
        if record is not None:
            record.update(buckets=buckets, num_hashes=num_hashes,
                          feed_forward_rng=_rng_state(attn_output.device) if random else None)
        return attn_output, hidden_states + self.feed_forward(attn_output), probs, buckets

    def backward_pass(self, attn_output, hidden_states, grad_attn_output, grad_hidden_states, record,
                      attention_mask=None):
        """From this layer's outputs and their gradients -> (its inputs, their gradients, {parameter: gradient})."""
        device = attn_output.device
        with torch.enable_grad():
            attn_output = attn_output.detach().requires_grad_()
            with _replayed_rng(record.get("feed_forward_rng"), device):
                branch = self.feed_forward(attn_output)
            ff_params = [p for p in self.feed_forward.parameters() if p.requires_grad]
            grads = torch.autograd.grad(branch, (attn_output, *ff_params), grad_hidden_states, allow_unused=True)
        hidden_states = (hidden_states - branch).detach()
        grad_attn_output = grad_attn_output + grads[0]
        param_grads = dict(zip(ff_params, grads[1:]))
        with torch.enable_grad():
            hidden_states.requires_grad_()
            with _replayed_rng(record.get("attention_rng"), device):
                branch = self.attention(hidden_states, attention_mask, record["num_hashes"],
                                        buckets=record["buckets"])[0]
            attn_params = [p for p in self.attention.parameters() if p.requires_grad]
            grads = torch.autograd.grad(branch, (hidden_states, *attn_params), grad_attn_output, allow_unused=True)
        prev_attn_output = (attn_output - branch).detach()
        param_grads.update(zip(attn_params, grads[1:]))
        return prev_attn_output, hidden_states.detach(), grad_attn_output, grad_hidden_states + grads[0], param_grads


class _ReversibleStack(torch.autograd.Function):
    """The layers run without keeping activations; backward recomputes them layer by layer from the outputs."""

    @staticmethod
    def forward(ctx, attn_output, hidden_states, run, *params):
        with torch.no_grad():
            attn_output, hidden_states = run.forward(attn_output, hidden_states)
        ctx.run = run
        ctx.save_for_backward(attn_output, hidden_states)
        return attn_output, hidden_states

    @staticmethod
    def backward(ctx, grad_attn_output, grad_hidden_states):
        attn_output, hidden_states = ctx.saved_tensors
        run, param_grads = ctx.run, {}
        for layer, record in zip(reversed(run.layers), reversed(run.records)):
            attn_output, hidden_states, grad_attn_output, grad_hidden_states, grads = layer.backward_pass(
                attn_output, hidden_states, grad_attn_output, grad_hidden_states, record, run.kwargs["attention_mask"])
            param_grads.update(grads)
        return grad_attn_output, grad_hidden_states, None, *(param_grads.get(p) for p in run.params)


class _StackRun:
    """One pass over the layers: what it collects (hidden states, attention weights) and what backward needs."""

    def __init__(self, layers, want_hidden: bool, want_weights: bool, kwargs: dict):
        self.layers, self.want_hidden, self.want_weights, self.kwargs = list(layers), want_hidden, want_weights, kwargs
        self.params = [p for p in layers.parameters() if p.requires_grad]
        self.hidden_states, self.attentions, self.records = [], [], []
        self.recording = False  # set when the backward pass will need the records

    def forward(self, attn_output, hidden_states):
        for layer in self.layers:
            if self.want_hidden:
                self.hidden_states.append(hidden_states)
            record = {} if self.recording else None
            attn_output, hidden_states, probs, _ = layer(attn_output, hidden_states, record=record,
                                                         output_attentions=self.want_weights, **self.kwargs)
            self.records.append(record)
            if self.want_weights:
                self.attentions.append(probs)
        if self.want_hidden:
            self.hidden_states.append(hidden_states)
        return attn_output, hidden_states


def run_reversible(layers, hidden_states, want_hidden: bool, want_weights: bool, **kwargs):
    """Both streams start as `hidden_states` -> (attention stream, hidden stream, the run's records). Through the
    reversible backward when gradients are wanted, else a plain loop."""
    run = _StackRun(layers, want_hidden, want_weights, kwargs)
    recorded = capturing()  # trace and export record the plain loop: a graph holds ops, not a custom backward
    if torch.is_grad_enabled() and (hidden_states.requires_grad or run.params) and not recorded:
        run.recording = True
        attn_output, hidden_states = _ReversibleStack.apply(hidden_states, hidden_states, run, *run.params)
    else:
        attn_output, hidden_states = run.forward(hidden_states, hidden_states)
    return attn_output, hidden_states, run
