"""Decoding steps run through torch.compile: `generate(..., cache_implementation="static", compile_config=...)`.

The prompt runs eagerly (its length changes from call to call). Every later step of greedy decoding or sampling is
one call of a compiled function whose shapes never change: the new tokens, their positions, the slot of the static
cache they are written to, a mask over every slot, and the cache's own buffers, written in place. On CPU this removes
the per-operation cost of Python and dispatch, which is a large part of a small model's decoding step.

One compiled function is kept per CompileConfig; torch.compile's guards compile it again for another model, batch
size or cache length, and inductor keeps what it built on disk, so a later process compiles faster. The first step
pays the compilation (tens of seconds on a small CPU); `last_compile_seconds` says how long it took.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import torch

from ..cache import SlotCache, StaticCache
from ..outputs import CausalLMOutputWithPast

logger = logging.getLogger(__name__)

last_compile_seconds: float | None = None  # the time of the latest step that compiled (or recompiled)


@dataclasses.dataclass
class CompileConfig:
    """How `generate()` compiles its decoding steps (the arguments of torch.compile), as in Transformers."""

    fullgraph: bool = False
    dynamic: bool | None = False
    backend: str | Callable = "inductor"
    mode: str | None = None
    options: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_COMPILED: dict[str, Callable] = {}  # repr(CompileConfig) -> the compiled step


def _step(model, input_ids, position_ids, slot, mask, keys, values):
    cache = SlotCache(keys, values, slot)
    return model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                 use_cache=True, return_dict=True).logits


def _compiled(config: CompileConfig) -> Callable:
    key = repr(config)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_step, fullgraph=config.fullgraph, dynamic=config.dynamic,
                                       backend=config.backend, mode=config.mode, options=config.options)
    return _COMPILED[key]


def compiled_decoding(model, generation_config, model_kwargs) -> Callable | None:
    """A function that runs one decoding step (the inputs of `prepare_inputs_for_generation` -> outputs with
    `logits` and the cache) through torch.compile, or None when the generation did not ask for it or cannot use it
    (a warning then says why)."""
    config = generation_config.compile_config
    if config is None or generation_config.disable_compile:
        return None
    cache_name = model._cache_argument()
    reason = _unsupported(model, generation_config, model_kwargs.get(cache_name) if cache_name else None)
    if reason:
        logger.warning("compile_config is ignored, the decoding steps run eagerly: %s", reason)
        return None
    return _DecodingStep(model, cache_name, _compiled(config))


def _unsupported(model, generation_config, cache) -> str | None:
    if not getattr(model, "_supports_compiled_decoding", False):
        return f"{type(model).__name__} has no compiled decoding step."
    if not isinstance(cache, StaticCache):
        return "it needs a static cache: pass cache_implementation='static'."
    if generation_config.output_attentions or generation_config.output_hidden_states:
        return "output_attentions / output_hidden_states need the eager forward."
    if torch.is_grad_enabled():
        return "it runs under torch.no_grad() only."
    return None


class _DecodingStep:
    """Turns the eager step's inputs (an attention mask over the tokens seen so far, the static cache) into the
    compiled step's fixed shapes, and keeps the cache's length in step with what the compiled step wrote."""

    def __init__(self, model, cache_name: str, compiled: Callable):
        self.model, self.cache_name, self.compiled = model, cache_name, compiled
        self.mask = None  # (batch, max_cache_len) bool, True where a written slot may be attended to

    def __call__(self, inputs: dict):
        global last_compile_seconds
        cache = inputs[self.cache_name]
        slot = cache.get_seq_length()
        keys = [layer._keys for layer in cache.layers]
        values = [layer._values for layer in cache.layers]
        ids = inputs["input_ids"]
        if self.mask is None:
            self.mask = torch.zeros(ids.shape[0], keys[0].shape[2], dtype=torch.bool, device=ids.device)
            for buffer in keys + values:  # masked slots get no weight, but 0 * NaN of stale memory would be NaN
                buffer[:, :, slot:].zero_()
        seen = inputs.get("attention_mask")
        self.mask[:, :slot + 1] = True if seen is None else seen.bool()[:, -slot - 1:]
        positions = inputs.get("position_ids")
        position = torch.tensor([slot], device=ids.device)
        if positions is None:
            positions = position.expand(ids.shape[0], 1)
        frames_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        start = time.perf_counter()
        logits = self.compiled(self.model, ids, positions, position, self.mask[:, None, None, :], keys, values)
        if torch._dynamo.utils.counters["stats"]["unique_graphs"] != frames_before:
            last_compile_seconds = time.perf_counter() - start
            logger.info("compiled the decoding step of %s in %.1f s", type(self.model).__name__,
                        last_compile_seconds)
        for layer in cache.layers:
            layer.length = slot + 1
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache)
