"""Decoding steps run through torch.compile: `generate(..., cache_implementation="static", compile_config=...)`.

The prompt runs eagerly (its length changes from call to call). Every later step of greedy decoding or sampling is
one call of a compiled function whose shapes never change: the new tokens, their positions, the slot of the static
cache they are written to, a mask over every slot, and the cache's own buffers, written in place. On CPU this removes
the per-operation cost of Python and dispatch, which is a large part of a small model's decoding step.

Each model keeps one compiled function per CompileConfig (as long as the model lives); torch.compile's guards
compile it again for another batch size or cache length, and inductor keeps what it built on disk, so a later
process compiles faster. The first step pays the compilation (30 s to 2 min on a small CPU); `last_compile_seconds`
says how long it took.

On CPU, inductor compiles the step with the weights frozen into it (`CPU_INDUCTOR_SETTINGS`; `options=` overrides
each): it packs each product's weight once, for step_operators' operator (built for this processor on first use) or,
where that cannot be built, for its own GEMM kernels (autotuning keeps them where they beat MKL's).
The packed weights are a second copy of the model's; a step compiled with them is dropped when the model's parameters
change, so that the next step compiles with the new values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import threading
import time
import types
import weakref
from typing import Any, Callable

import torch

from .. import step_operators
from ..allocator import give_back_freed_memory
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


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> _ModelSteps

# measured on 2 AVX2 cores, tokens/s against the same step compiled without them: GPT-2-small 40 -> 49 at batch 1 and
# 130 -> 196 at batch 8, SmolLM2-135M 36 -> 45 and 112 -> 167 (MKL runs a few rows at ~35 GFLOP/s, the packed
# kernels at ~70)
CPU_INDUCTOR_SETTINGS = {"freezing": True, "max_autotune": True, "max_autotune_gemm_backends": "CPP,ATEN"}


def inductor_settings(config: CompileConfig, device: torch.device) -> dict:
    """The inductor settings a decoding step of a model on `device` compiles under."""
    options = dict(config.options or {})
    if config.backend == "inductor" and device.type == "cpu":
        return {**CPU_INDUCTOR_SETTINGS, **_vector_width(), **options}
    return options


def _vector_width() -> dict:
    """The vector width inductor picks here, as a setting. Inductor keys its cache of compiled graphs by its
    settings, not by the CPU: without it a cache shared by machines of other widths (or runs under another
    ATEN_CPU_CAPABILITY) hands back kernels written for 8 floats a vector to code built for 16, or the reverse
    (seen: wrong values, heap corruption)."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    isa = pick_vec_isa()
    return {"cpp.simdlen": isa.bit_width()} if isa else {}


def _step(model, input_ids, position_ids, slot, mask, keys, values):
    cache = SlotCache(keys, values, slot)
    return model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                 use_cache=True, return_dict=True).logits


def _compiled(model, config: CompileConfig) -> tuple[Callable, _ModelSteps]:
    """`model`'s compiled step for `config`, and the model's record of its steps. Each model compiles its own copy
    of `_step` (code and globals), freed when the model goes or its weights change."""
    weights = [(id(parameter), parameter._version) for parameter in model.parameters()]
    known = _COMPILED.get(model)
    if known is None or known.weights != weights:  # new, or its parameters were changed in place or replaced since
        if known is not None:
            logger.info("the parameters of %s changed: its decoding step compiles again", type(model).__name__)
            known.release()
        known = _COMPILED[model] = _ModelSteps(weights)
        weakref.finalize(model, known.release).atexit = False
    key = repr(config)
    if key not in known.steps:
        step = types.FunctionType(_step.__code__.replace(), dict(_step.__globals__), _step.__name__)
        known.codes.append(step.__code__)
        known.steps[key] = torch.compile(step, fullgraph=config.fullgraph, dynamic=config.dynamic,
                                         backend=config.backend, mode=config.mode, options=config.options)
    return known.steps[key], known


class _ModelSteps:
    """One model's compiled steps ({repr(CompileConfig): step}), the identities and versions of its parameters when
    they compiled, and what torch.compile built for them: the code objects of its copies of `_step` (torch.compile
    keeps the compiled forms with the code, in a cycle the garbage collector cannot see) and inductor's Python modules
    (kept by inductor for the life of the process; they hold the frozen weights)."""

    def __init__(self, weights: list):
        self.weights, self.steps, self.codes, self.modules = weights, {}, [], []

    @staticmethod
    def inductor_modules() -> list:
        codecache = sys.modules.get("torch._inductor.codecache")  # not imported: nothing built by inductor yet
        return [] if codecache is None else codecache.PyCodeCache.modules

    def release(self):
        for code in self.codes:
            torch._dynamo.reset_code(code)
        loaded = self.inductor_modules()
        for module in self.modules:
            if module in loaded:
                loaded.remove(module)
            if sys.modules.get(module.__name__) is module:
                del sys.modules[module.__name__]
        self.steps.clear()
        self.codes.clear()
        self.modules.clear()


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
    device = next(model.parameters()).device
    settings = inductor_settings(config, device)
    if device.type == "cpu" and settings.get("freezing"):
        step_operators.load()  # its products over weights packed once as the step compiles, its attention
    return _DecodingStep(model, cache_name, *_compiled(model, config), settings)


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

    def __init__(self, model, cache_name: str, compiled: Callable, built: _ModelSteps, settings: dict):
        import torch._inductor.config as inductor_config  # only a compiled generation pays for importing it

        self.model, self.cache_name, self.compiled, self.built = model, cache_name, compiled, built
        self.settings = inductor_config.patch(settings)  # read while tracing as well as while compiling
        self.mask = None  # (batch, max_cache_len) bool, True where a written slot may be attended to

    def __call__(self, inputs: dict):
        global last_compile_seconds
        cache = inputs[self.cache_name]
        slot = cache.get_seq_length()
        keys = [layer._keys for layer in cache.layers]
        values = [layer._values for layer in cache.layers]
        ids = inputs["input_ids"]
        first = self.mask is None
        if first:
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
        modules_before = len(self.built.inductor_modules())
        start = time.perf_counter()
        with self.settings, self._guards(first):
            logits = self.compiled(self.model, ids, positions, position, self.mask[:, None, None, :], keys, values)
        if torch._dynamo.utils.counters["stats"]["unique_graphs"] != frames_before:
            last_compile_seconds = time.perf_counter() - start
            logger.info("compiled the decoding step of %s in %.1f s", type(self.model).__name__,
                        last_compile_seconds)
            self.built.modules += self.built.inductor_modules()[modules_before:]
            give_back_freed_memory()  # the compiler's working memory: ~2x the weights when they are frozen
        for layer in cache.layers:
            layer.length = slot + 1
        return CausalLMOutputWithPast(logits=logits, past_key_values=cache)

    @staticmethod
    def _guards(first: bool):
        """torch.compile's guards in full at a generation's first step, which compiles or picks the step for these
        shapes; later steps of the same generation pass the same model, buffers and shapes, so only the guards
        telling apart the steps compiled so far run (GPT-2-small on CPU: ~570 -> ~190 us a step). Only while no
        other Python thread runs: torch's stance holds for the whole process, and another thread's compiled call
        (another generation's first step) must keep its guards."""
        if first or threading.active_count() > 1:
            return contextlib.nullcontext()
        return torch.compiler.set_stance(skip_guard_eval_unsafe=True)
