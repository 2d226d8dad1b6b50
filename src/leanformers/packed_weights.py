"""Products of several rows through oneDNN, each weight packed once into oneDNN's own layout.

On an AMD processor with AVX-512 (measured: an AMD EPYC, 2 threads), MKL's float32 products run at ~165 GFLOP/s,
apparently on its AVX2 kernels, while oneDNN's reach ~400 with the weight in its packed layout: BERT-base's layer
products at 128 rows 2.2-2.5x, 8 rows 3.9-5.2x, and its whole forward 1x128 2.4x. With AVX2 only (the same machine
with AVX-512 hidden from every library) oneDNN's AVX2 kernels still beat MKL's at 2-256 rows (1.1-2.5x), the
forward 1.12-1.24x. With the plain weight oneDNN reorders it at every call (a BERT-base forward at 1x128 ~15%
slower than packed, the same at 8x128). One row keeps the forms of products.py (it streams the weight from memory
either way).

The packed copy is made at a weight's first product of several rows and kept while the weight lives, beside it:
those weights take twice their memory. It is made again if the weight is changed in place (or, for a weight made
under inference_mode, which counts no versions, given new storage) and after any torch optimizer's step. Set
LEANFORMERS_PACKED_WEIGHTS=0 for oneDNN's products of the plain weight instead (no copy).
"""

from __future__ import annotations

import os

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.weak import WeakIdKeyDictionary


def available() -> bool:
    """Whether torch's oneDNN is there and this processor runs AVX2 or AVX-512 (oneDNN has kernels for both)."""
    return torch.backends.mkldnn.is_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


KEEP_PACKED = os.environ.get("LEANFORMERS_PACKED_WEIGHTS", "1") != "0"
PACKING_ROWS = 128  # oneDNN chooses its layout for a number of rows; the packed weight serves any number

# weight (a view's base) -> {a view's (offset, shape, strides): (its version and address when packed, its packed
# copy)}; an entry goes with its weight
_packed = WeakIdKeyDictionary()


_watching_optimizers = False  # whether optimizer steps drop the copies yet (from the first copy on)


def forget(*_) -> None:
    """Drops every packed copy; the next product packs its weight again. Call it after changing weights through
    `.data` in place (torch counts no version for that)."""
    _packed.clear()


def linear(x, weight, bias=None, activation: str = "none"):
    """F.linear(x, weight, bias) through oneDNN, followed by `activation` ("none" or "gelu": the exact, erf form)
    applied inside the same kernel, for float32 CPU tensors without autograd."""
    packed = _packed_weight(weight) if KEEP_PACKED else weight
    algorithm = "none" if activation == "gelu" else ""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, activation, [], algorithm)


def _packed_weight(weight):
    # a view made at each call (GPT-2's Conv1D passes `weight.t()`) is a new tensor every time: the copies are kept
    # with the view's base, one for each place and shape of a view
    copies = _packed.setdefault(weight if weight._base is None else weight._base, {})
    view = (weight.storage_offset(), weight.shape, weight.stride())
    # tensors made under inference_mode count no versions: for them only a new address is seen
    state = (None if weight.is_inference() else weight._version, weight.data_ptr())
    entry = copies.get(view)
    if entry is None or entry[0] != state:
        _watch_optimizers()
        entry = copies[view] = (state, torch.ops.mkldnn._reorder_linear_weight(weight, PACKING_ROWS))
    return entry[1]


def _watch_optimizers() -> None:
    """torch's fused optimizers change the weights without counting a version: from the first packed copy on, any
    optimizer's step drops the copies (a process that never packs leaves torch's optimizers alone)."""
    global _watching_optimizers
    if not _watching_optimizers:
        register_optimizer_step_post_hook(forget)
        _watching_optimizers = True
