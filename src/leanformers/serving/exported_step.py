"""The server's CPU step compiled ahead of time (`leanformers serve --compile`, `Engine(compile=True)` on CPU).

One graph runs every forward pass of the server, prompts and decoding steps alike: `rows` requests of `new` tokens
each, written at their positions in key/value buffers of any number of slots and any length, the logits of one
chosen position per row out. torch.export traces it with all these sizes symbolic and AOTInductor compiles it to a
shared library in a child process (serving/exported_build.py): the compiler's own memory (about 400 MB that
torch.compile keeps in the serving process for its whole life) goes away with the child. Everything between the
weights' products runs as fused C++ loops without Python; the products of float32 weights run on the step's own
kernel (serving/row_products.py) with each weight packed for it, and grouped attention as two batched products over
each key head's stacked queries (layers.StepAttentionProducts).

The library holds no weights: its constants are handed to it at load, the model's own tensors as they are and its
product weights packed here, one at a time (with `release_weights` the model gives each one up once packed, so
the server holds its weights once). So a library depends on the architecture, the configuration and the dtype, not
on the weights: it is kept in the cache folder under a digest of those, the torch version and the processor's
instruction set, and later servers of any checkpoint of that shape load it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .. import step_operators
from . import row_products
from .slots import ServingStep

FORMAT = 5  # bumped when the traced function or the folder's layout changes


def cache_root() -> Path:
    """Where compiled steps are kept: $LEANFORMERS_CACHE, else $XDG_CACHE_HOME/leanformers, else
    ~/.cache/leanformers."""
    if os.environ.get("LEANFORMERS_CACHE"):
        return Path(os.environ["LEANFORMERS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leanformers"


def step_key(model) -> str:
    """The digest a compiled step is kept under: what the traced graph depends on, weights excluded."""
    from .. import __version__

    parts = {"format": FORMAT, "class": f"{type(model).__module__}.{type(model).__qualname__}",
             "config": json.loads(model.config.to_json_string(use_diff=False)), "dtype": str(model.dtype),
             "torch": torch.__version__, "leanformers": __version__,
             "cpu": step_operators.processor(),
             "products": hashlib.sha256(row_products.SOURCE.read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ExportedStep:
    """`model`'s ServingStep, compiled (or found compiled) and loaded with the model's own tensors as constants, its
    weights packed for the step's products where the library was compiled with them (serving/exported_build.py).

    `step(tokens, starts, lasts, key_len, keys, values) -> logits (rows, vocab)`; `buffers(rows, length)` makes the
    zeroed per-layer (keys, values) pairs a prompt is prefilled into. With `release_weights` the model gives up
    each weight once its packed form is made (the model can no longer run by itself): the server then holds its
    weights once."""

    def __init__(self, model, build_timeout: float = 3600.0, release_weights: bool = False):
        from .exported_build import build_in_child, made_constants, own_tensors

        self.module = ServingStep(model)
        self.folder = cache_root() / "serve-steps" / step_key(model)
        self.build_seconds = None if (self.folder / "step.so").is_file() else build_in_child(
            model, self.folder, build_timeout)
        spec = json.loads((self.folder / "spec.json").read_text(encoding="utf-8"))
        self.layers, self.dtype, recipe = spec["layers"], model.dtype, spec["recipe"]
        self.packed = spec["products"]  # the weights' products are row_products.cpp's, each weight packed for it
        block = row_products.load_products(self.folder / "products.so") if self.packed else None
        self.runner = torch._C._aoti.AOTIModelContainerRunnerCpu(str(self.folder / "step.so"), 1)
        constants = made_constants(self.runner, own_tensors(self.module), recipe, block,
                                   release=self.module if release_weights else None)
        # user-managed: the library reads these tensors where they are (the model's own, or their packed forms)
        self.runner.update_constant_buffer(constants, False, True, True)

    def __call__(self, tokens, starts, lasts, key_len: int, keys: list, values: list) -> torch.Tensor:
        key_range = torch.empty(key_len)  # only its length is read
        return self.runner.run([tokens, starts, lasts, key_range, *keys, *values])[0]

    def buffers(self, rows: int, length: int) -> list:
        return [(torch.zeros(rows, heads, length, dim, dtype=self.dtype),
                 torch.zeros(rows, heads, length, dim, dtype=self.dtype)) for heads, dim in self.layers]
