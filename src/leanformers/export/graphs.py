"""What an ONNX export records for each kind of task: the wrapper module, its named inputs and outputs, example
arguments with dynamic axes, and test cases that check the file (with the positions whose values count)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn
from torch.export import Dim

from ..cache import DynamicCache, EncoderDecoderCache
from ..outputs import BaseModelOutput


@dataclass
class Graph:
    module: nn.Module
    input_names: tuple
    output_names: tuple
    example: tuple            # example arguments of module.forward
    dynamic: tuple            # dynamic_shapes for them (the structure of module.forward's parameters)
    cases: list               # [(arguments, {output name: bool mask of the positions that count, or None})]


class Named(nn.Module):
    """model(**named inputs) -> the tuple of the task's output fields."""

    def __init__(self, model: nn.Module, input_names: tuple, output_names: tuple):
        super().__init__()
        self.model, self.input_names, self.output_names = model, input_names, output_names

    def forward(self, *inputs):
        out = self.model(**dict(zip(self.input_names, inputs)), return_dict=True)
        return tuple(out[name] for name in self.output_names)


class DecoderWithPast(nn.Module):
    """One decoding step: (input_ids, attention_mask, [position_ids,] keys and values of each layer) -> (logits,
    the keys and values of each layer with this step's appended). An empty past (length 0) is the prompt step."""

    def __init__(self, model: nn.Module, input_names: tuple, layers: int):
        super().__init__()
        self.model, self.input_names, self.layers = model, input_names, layers

    def forward(self, *inputs):
        named = dict(zip(self.input_names, inputs))
        past = inputs[len(self.input_names):]
        cache = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(self.layers)))
        out = self.model(**named, past_key_values=cache, use_cache=True, return_dict=True)
        return (out.logits, *[t for pair in out.past_key_values.to_legacy_cache() for t in pair])


def _ids(model, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    return torch.randint(min(5, vocab - 1), vocab, (batch, seq), generator=generator)


def encoder_inputs(model: nn.Module) -> tuple:
    """input_ids and attention_mask, and token_type_ids where the model has them."""
    params = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in params and getattr(model.config, "type_vocab_size", 0) > 1:
        names.append("token_type_ids")
    return tuple(name for name in names if name in params)


def encoder_graph(model: nn.Module, outputs: tuple) -> Graph:
    names = encoder_inputs(model)

    def args(batch, seq):
        ids = _ids(model, batch, seq)
        mask = torch.ones(batch, seq, dtype=torch.long)
        mask[-1, seq // 2:] = 0  # the last row padded at its end
        values = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
        return tuple(values[name] for name in names)

    limit = max(int(getattr(model.config, "max_position_embeddings", None) or 4096), 3)
    batch, sequence = Dim("batch", min=1, max=4096), Dim("sequence", min=2, max=limit)
    dynamic = (tuple({0: batch, 1: sequence} for _ in names),)
    cases = [(args(2, 8), None), (args(3, 5), None)]
    return Graph(Named(model, names, outputs), names, outputs, args(2, 8), dynamic, cases)


def decoder_graph(model: nn.Module) -> Graph:
    """The decoder with its key/value cache as inputs (past_key_values.N.key/value) and outputs (present.N.*)."""
    params = inspect.signature(model.forward).parameters
    names = tuple(n for n in ("input_ids", "attention_mask", "position_ids") if n in params)
    with torch.no_grad():
        legacy = model(_ids(model, 1, 2), use_cache=True, return_dict=True).past_key_values.to_legacy_cache()
    layers = len(legacy)
    past_names = tuple(f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))
    outputs = ("logits", *(f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")))
    module = DecoderWithPast(model, names, layers)

    def args(ids, mask, past):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]  # left padding shifts positions
        values = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        return (*(values[name] for name in names), *past)

    def empty(batch):
        return [torch.zeros(batch, t.shape[1], 0, t.shape[3]) for pair in legacy for t in pair]

    prompt, mask = _ids(model, 3, 5, seed=1), torch.ones(3, 5, dtype=torch.long)
    mask[1, :2] = 0  # left padding, as generation pads
    first = args(prompt, mask, empty(3))
    with torch.no_grad():
        present = module(*first)[1:]
    step_mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.long)], 1)
    step = args(_ids(model, 3, 1, seed=2), step_mask, present)
    # padding positions hold values nobody reads: only real tokens count
    counts = {"logits": mask.bool()[:, :, None], **{n: mask.bool()[:, None, :, None] for n in outputs[1:]}}
    step_counts = {"logits": None, **{n: step_mask.bool()[:, None, :, None] for n in outputs[1:]}}
    auto = Dim.AUTO
    dynamic = (({0: auto, 1: auto},) * len(names) + tuple({0: auto, 2: auto} for _ in past_names),)
    example = args(_ids(model, 2, 4), torch.ones(2, 7, dtype=torch.long),
                   [torch.randn(2, t.shape[1], 3, t.shape[3]) for pair in legacy for t in pair])
    return Graph(module, names + past_names, outputs, example, dynamic, [(first, counts), (step, step_counts)])


class Seq2SeqDecoderWithPast(nn.Module):
    """One decoding step of an encoder-decoder: (decoder_input_ids, encoder_hidden_states, encoder_attention_mask,
    the decoder's self-attention keys and values of each layer) -> (logits, those keys and values with this step's
    appended). The cross-attention keys and values are computed from the encoder output at every step."""

    def __init__(self, model: nn.Module, layers: int):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask, *past):
        own = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(self.layers)))
        out = self.model(attention_mask=encoder_attention_mask, decoder_input_ids=decoder_input_ids,
                         encoder_outputs=BaseModelOutput(last_hidden_state=encoder_hidden_states),
                         past_key_values=EncoderDecoderCache(own, DynamicCache()), use_cache=True, return_dict=True)
        legacy = out.past_key_values.self_attention_cache.to_legacy_cache()
        return (out.logits, *[t for pair in legacy for t in pair])


def seq2seq_graphs(model: nn.Module) -> tuple[Graph, Graph]:
    """(encoder graph: ids and mask -> last_hidden_state, decoder graph with its self-attention cache)."""
    encoder = Named(model.get_encoder(), ("input_ids", "attention_mask"), ("last_hidden_state",))
    auto = Dim.AUTO
    prompt, mask = _ids(model, 3, 6, seed=1), torch.ones(3, 6, dtype=torch.long)
    mask[1, 4:] = 0
    encoder_graph_ = Graph(encoder, encoder.input_names, encoder.output_names, (prompt, mask),
                           (({0: auto, 1: auto},) * 2,), [((prompt, mask), None), ((prompt[:2, :3], mask[:2, :3]), None)])
    start = torch.full((3, 1), model.config.decoder_start_token_id or 0, dtype=torch.long)
    with torch.no_grad():
        hidden = encoder(prompt, mask)[0]
        legacy = model(attention_mask=mask, decoder_input_ids=start, encoder_outputs=BaseModelOutput(
            last_hidden_state=hidden), use_cache=True, return_dict=True).past_key_values.self_attention_cache
    legacy = legacy.to_legacy_cache()
    layers = len(legacy)
    past_names = tuple(f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value"))
    outputs = ("logits", *(f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")))
    module = Seq2SeqDecoderWithPast(model, layers)
    empty = [torch.zeros(3, t.shape[1], 0, t.shape[3]) for pair in legacy for t in pair]
    first = (start, hidden, mask, *empty)
    with torch.no_grad():
        present = module(*first)[1:]
    step = (_ids(model, 3, 1, seed=2), hidden, mask, *present)
    example = (_ids(model, 2, 2), torch.randn(2, 5, hidden.shape[-1]), torch.ones(2, 5, dtype=torch.long),
               *[torch.randn(2, t.shape[1], 3, t.shape[3]) for pair in legacy for t in pair])
    dynamic = ({0: auto, 1: auto},) * 3 + (tuple({0: auto, 2: auto} for _ in past_names),)
    names = ("decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask", *past_names)
    return encoder_graph_, Graph(module, names, outputs, example, dynamic, [(first, None), (step, None)])
