"""The server's decoding step through torch.compile (`leanformers serve --compile`, `Engine(compile=True)`).

One graph serves every step: the batch size and the key length are dynamic, and on CPU the weights are frozen into
it for packed GEMM kernels (inductor's own; on Intel processors, for a step of symbolic size, oneDNN's or MKL's:
generation/compiled.py), as in generate()'s compiled steps. Measured on 2 AMD cores, SmolLM2-135M, requests of 30-60
prompt tokens decoding 64 tokens each, all at once: 8 requests 77 -> 118 tokens/s, 32 requests 128 -> 163 (the
prompts are prefilled eagerly). Its grouped attention is two batched products (layers.StepAttentionProducts), as in
eager steps: engine alone, 3 waves of 32 requests, 219 -> 232 tokens/s. The price: the compilation, before the
server takes requests (minutes on a small CPU), and the frozen weights, a second copy of the model's. A single
running request is decoded beside a dummy row in a free slot: torch.compile treats a size of 1 as a constant, so one
row would compile a second graph with a third copy of the weights.
"""

from __future__ import annotations

import torch

from ..allocator import give_back_freed_memory
from ..generation.compiled import CompileConfig, inductor_settings
from ..layers import StepAttentionProducts
from .slots import KVSlots, StepCache


def _step(model, tokens, lengths, key_len: int, slots: KVSlots):
    """The last-position logits of one decoding step over slots 0..batch-1 (what Engine's eager step computes)."""
    mask = (torch.arange(key_len, device=tokens.device)[None] <= lengths[:, None])[:, None, None, :]
    out = model(input_ids=tokens, attention_mask=mask, position_ids=lengths[:, None], use_cache=True,
                return_dict=True, past_key_values=StepCache(slots, lengths, key_len))
    return out.logits[:, -1]


class CompiledStep:
    """`step(tokens (batch, 1), lengths (batch,)) -> logits (batch, vocab)` through one compiled graph."""

    def __init__(self, model, slots: KVSlots):
        if not getattr(model, "_supports_compiled_decoding", False):
            raise ValueError(f"compile: {type(model).__name__} has no compiled decoding step; serve it without "
                             f"--compile.")
        import torch._inductor.config as inductor_config  # only a compiled server pays for importing it

        self.model, self.slots = model, slots
        device = next(model.parameters()).device
        self.settings = inductor_config.patch(inductor_settings(CompileConfig(dynamic=True), device))
        self.compiled = torch.compile(_step, dynamic=True)
        self.compiled_once = False

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows = tokens.shape[0]
        if rows == 1 and self.slots.slots > 1:  # a dummy row in the free slot 1, at its position 0
            tokens, lengths = tokens.repeat(2, 1), torch.cat((lengths, lengths.new_zeros(1)))
        with self.settings, StepAttentionProducts():
            logits = self.compiled(self.model, tokens, lengths.to(tokens.device), int(lengths.max()) + 1,
                                   self.slots)[:rows]
        if not self.compiled_once:  # the first call compiled: the compiler's working memory is free now
            give_back_freed_memory()
            self.compiled_once = True
        return logits
