"""The compiled CPU step's weight products (row_products.cpp): float32 weights packed in blocks of output columns
and read once per step at close to the memory's speed, where oneDNN and MKL read them at two thirds of it for the
few rows a decoding step has.

The step graph calls them as the operator `leanformers::rows_linear`, and the compiled library calls its C
function directly: the build child compiles row_products.cpp next to the library (`compile_products`), replaces
the model's linear layers by `RowsLinear` before tracing (`use_row_products`) and tells AOTInductor the function's
signature (`C_SHIMS`). A process that runs such a library loads the products first (`load_products`).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import torch
from torch import nn

from ..step_operators import compile_command, pack  # noqa: F401 - pack: the build and the step use it

SOURCE = Path(__file__).with_name("row_products.cpp")


@torch.library.custom_op("leanformers::rows_linear", mutates_args=())
def rows_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None, columns: int) -> torch.Tensor:
    """x (rows, depth) @ the weight `packed` holds (`pack`) + bias: (rows, columns). This Python form is what eager
    runs (and what tests compare with); the compiled library calls row_products.cpp instead."""
    weight = packed.transpose(1, 2).reshape(-1, packed.shape[1])[:columns]
    return torch.nn.functional.linear(x, weight, bias)


@rows_linear.register_fake
def _(x, packed, bias, columns):
    return x.new_empty(x.shape[0], columns)


C_SHIMS = {torch.ops.leanformers.rows_linear.default: [
    "AOTITorchError aoti_torch_cpu_rows_linear(AtenTensorHandle x, AtenTensorHandle packed, AtenTensorHandle* bias, "
    "int64_t columns, AtenTensorHandle* out)"]}


class RowsLinear(nn.Module):
    """A linear layer whose product is `rows_linear` over its packed weight (`columns` outputs)."""

    def __init__(self, packed: torch.Tensor, bias: torch.Tensor | None, columns: int):
        super().__init__()
        self.columns = columns
        self.register_buffer("packed", packed)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1]).contiguous()
        return rows_linear(flat, self.packed, self.bias, self.columns).reshape(*x.shape[:-1], self.columns)


def use_row_products(root: nn.Module, block: int) -> dict:
    """Replace every float32 linear layer under `root` (nn.Linear, GPT-2's Conv1D) by a RowsLinear over its weight
    packed for `block`; the recipe of the packed buffers: {buffer: {"weight": name, "transposed": bool}}."""
    from ..models.gpt2 import Conv1D

    recipe = {}
    for name, module in list(root.named_modules()):
        transposed = isinstance(module, Conv1D)
        if not isinstance(module, (nn.Linear, Conv1D)) or module.weight.dtype != torch.float32:
            continue
        weight = module.weight.detach().t() if transposed else module.weight.detach()
        owner, _, attribute = name.rpartition(".")
        setattr(root.get_submodule(owner), attribute, RowsLinear(pack(weight, block), module.bias, len(weight)))
        recipe[f"{name}.packed"] = {"weight": f"{name}.weight", "transposed": transposed}
    return recipe


def compile_products(out: Path):
    """row_products.cpp compiled for this processor into the shared library `out` (the compiler inductor uses)."""
    subprocess.run([*compile_command(SOURCE), "-o", str(out)], check=True, capture_output=True, text=True)


def load_products(path: Path) -> int:
    """Load the products library so that a compiled step finds its function; the column block it packs for."""
    library = ctypes.CDLL(str(path), mode=os.RTLD_GLOBAL)
    return library.leanformers_rows_block()
