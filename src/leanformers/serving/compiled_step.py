"""The server's decoding step through torch.compile on CUDA (`leanformers serve --compile --device cuda`), replayed
as CUDA graphs (torch.compile's "reduce-overhead" mode). On CPU `--compile` runs serving/exported_step.py instead.

A CUDA graph needs fixed shapes: the batch is padded with dummy rows in free slots to a power of two (at most the
number of slots), every step attends over the slots' whole length (the mask hides what a row has not written), and
the weights stay the model's own. Each padded batch size is compiled and recorded at the first step, so that no
batch stalls mid-serving while its shape compiles; the key/value buffers are marked as static addresses, so a
replay reads and writes them in place instead of copying them into the graph's own inputs. Prompts are prefilled
eagerly.
"""

from __future__ import annotations

import torch

from ..allocator import give_back_freed_memory
from ..generation.compiled import CompileConfig, inductor_settings
from ..layers import StepAttentionProducts
from .slots import KVSlots, ServingStep


def fixed_shapes(device: torch.device) -> bool:
    """Whether `--compile` on `device` compiles the fixed-shape steps of this module (CUDA) rather than the exported
    step (CPU)."""
    return device.type == "cuda"


class CompiledStep:
    """`step(tokens (batch, 1), lengths (batch,)) -> logits (batch, vocab)` through torch.compile."""

    def __init__(self, model, slots: KVSlots):
        import torch._inductor.config as inductor_config  # only a compiled server pays for importing it

        self.step, self.slots = ServingStep(model), slots
        device = next(model.parameters()).device
        self.cuda_graphs = device.type == "cuda"  # elsewhere (tests) the same fixed-shape graphs, without them
        config = CompileConfig(dynamic=False, mode="reduce-overhead" if self.cuda_graphs else None)
        self.settings = inductor_config.patch(inductor_settings(config, device))
        self.compiled = torch.compile(self.step, dynamic=False, mode=config.mode)
        self.compiled_once = False
        self.key_range = torch.empty(slots.max_len, device=device)  # keys over the slots' whole length: its size

    def padded_rows(self, rows: int) -> int:
        """The batch size the step runs `rows` running requests at."""
        return min(1 << (rows - 1).bit_length(), self.slots.slots)

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        first = not self.compiled_once
        if first:
            self._compile_every_size(tokens, lengths)
            give_back_freed_memory()  # the compiler's working memory is free now
            self.compiled_once = True
        return self._run(tokens, lengths, self.padded_rows(tokens.shape[0]))

    def _run(self, tokens: torch.Tensor, lengths: torch.Tensor, size: int) -> torch.Tensor:
        rows = tokens.shape[0]
        if size > rows:  # dummy rows in the free slots after the running ones, at their position 0
            tokens = torch.cat((tokens, tokens[:1].expand(size - rows, 1)))
            lengths = torch.cat((lengths, lengths.new_zeros(size - rows)))
        lengths = lengths.to(tokens.device)
        if self.cuda_graphs:  # the previous replay's outputs have been read: its memory may be reused
            torch.compiler.cudagraph_mark_step_begin()
        with self.settings, StepAttentionProducts():
            logits = self.compiled(tokens, lengths, torch.zeros_like(lengths), self.key_range, *self.slots.keys,
                                   *self.slots.values)
        return logits[:rows]

    def _compile_every_size(self, tokens: torch.Tensor, lengths: torch.Tensor):
        """Compile the step at every padded batch size before the first real step (on CUDA, twice each: a CUDA
        graph is recorded at a shape's second call). The rows that run are the first step's own (the real step then
        writes their keys again) and dummies in free slots."""
        if self.cuda_graphs:
            for buffer in self.slots.keys + self.slots.values:
                torch._dynamo.mark_static_address(buffer)
        for size in sorted({self.padded_rows(rows) for rows in range(1, self.slots.slots + 1)}):
            for _ in range(2 if self.cuda_graphs else 1):
                self._run(tokens[:size], lengths[:size], size)
