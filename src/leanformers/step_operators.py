"""Operators for the decoding steps that torch.compile builds with frozen weights on CPU, from step_operators.cpp:
`leanformers::packed_linear`, the weight products of row_products.cpp (the compiled server's kernel), and
`leanformers::step_attention`, the attention of one new token per row.

Products: each weight is packed in blocks of output columns (`pack`); under frozen weights inductor computes the
packing once, as it compiles, and keeps the packed copy as a constant of the step. The kernel reads each block once
while a tile of rows sums in registers. Steps of several rows call it (2 AVX-512 cores, batch 8, against inductor's
own packed GEMMs: GPT-2-small 1.26-1.31x, SmolLM2-135M 0.94-1.11x); one row keeps inductor's products, which read the
weights as fast and fuse more (through the operator GPT-2-small and SmolLM2-135M decoded at 0.82-0.99x).

Attention: SDPA's CPU kernel takes 140 us a GPT-2-small layer at one row and 230 us a SmolLM2-135M layer at eight
(static cache of 160 positions), mostly outside the arithmetic; the operator takes 70 and 88: it reads only the keys
the mask keeps, the query heads of a group read their key head in place, and its sums stay in registers (GPT-2-small
batch 1 decoded 1.06-1.07x and SmolLM2-135M batch 8 1.10-1.14x as fast).

The operators are compiled for this processor on first use (~10 s) and kept in inductor's cache folder; where they
cannot be built, the steps keep inductor's GEMMs and SDPA.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name("step_operators.cpp"), Path(__file__).parent / "serving" / "row_products.cpp"]

_block: int | None = None  # the column block of the loaded products; None: not loaded
_failed = False  # a build failed in this process: do not try again


def load() -> bool:
    """Build (once per processor and torch version) and load the operators; False, with a warning, where they
    cannot be."""
    global _block, _failed
    if _block is None and not _failed:
        try:
            path = _built()
            torch.ops.load_library(str(path))
            torch.library.register_fake("leanformers::packed_linear")(_fake)
            torch.library.register_fake("leanformers::step_attention")(_fake_attention)
            _block = ctypes.CDLL(str(path)).leanformers_rows_block()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            _failed = True
            logger.warning("decoding steps keep inductor's products and SDPA: step_operators.cpp could not be built "
                           "(%s)", getattr(error, "stderr", None) or error)
    return _block is not None


def loaded() -> bool:
    """Whether the operators are loaded: compiled steps then call them for their float32 products of several rows
    and their attention of one new token."""
    return _block is not None


def compiling_frozen_weights() -> bool:
    """True when torch.compile freezes the weights: inductor then packs each F.linear weight once, for the products
    here or its own kernels, which run a few rows about twice as fast as MKL (generation/compiled.py)."""
    import torch._inductor.config

    return bool(torch._inductor.config.freezing)


# torch.compile reads these once, as it builds a graph (a call would split the graph): what the decorator
# torch.compiler.assume_constant_result marks, set here because that decorator imports the compiler stack
loaded._dynamo_marked_constant = compiling_frozen_weights._dynamo_marked_constant = True


def building_step() -> bool:
    """Whether torch.compile is building a graph (not an export) with frozen weights while the operators are loaded:
    a CPU decoding step that calls them."""
    return (torch.compiler.is_compiling() and not torch.compiler.is_exporting() and compiling_frozen_weights()
            and loaded())


def linear(x, weight, bias=None):
    """F.linear(x, weight, bias) through the operator, over the weight packed for it."""
    columns = weight.shape[0]
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    out = torch.ops.leanformers.packed_linear(flat, pack(weight, _block), None if bias is None else bias.contiguous(),
                                                columns)
    return out.view(*x.shape[:-1], columns)


def pack(weight: torch.Tensor, block: int) -> torch.Tensor:
    """A (columns, depth) weight as (blocks, depth, block): each block of `block` output columns with its depth
    rows contiguous, the last block padded with zeros (a pad, not a concatenation with zeros: inductor folds a pad of
    a frozen weight into a constant, and does not fold the other)."""
    columns, depth = weight.shape
    blocks = -(-columns // block)
    weight = F.pad(weight, (0, 0, 0, blocks * block - columns))
    return weight.reshape(blocks, block, depth).transpose(1, 2).contiguous()


def step_attention(q, k, v, mask, scale):
    """F.scaled_dot_product_attention of one query per row through the operator: q (batch, heads, 1, dim), k and v
    (batch, key heads, keys, dim), each key head serving heads / key heads query heads in turn (grouped-query
    attention); mask additive or boolean (True: attend), broadcastable to (batch, heads, 1, keys)."""
    if mask is not None and mask.dtype == torch.bool:
        mask = torch.where(mask, 0.0, float("-inf"))
    return torch.ops.leanformers.step_attention(q, k, v, mask, scale if scale is not None else q.shape[-1] ** -0.5)


def _fake_attention(q, k, v, mask, scale):  # the output's shape, for torch.compile's tracing
    return q.new_empty(q.shape[0], q.shape[1], 1, q.shape[3])


def _fake(x, packed, bias, columns):  # the output's shape, for torch.compile's tracing
    return x.new_empty(x.shape[0], columns)


def compile_command(source: Path) -> list[str]:
    """The command (less `-o OUT`) that builds `source`, row_products.cpp or a file that includes it, into a shared
    library for this processor, with the C++ compiler inductor uses."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    torch_dir = Path(torch.__file__).parent
    return [get_cpp_compiler(), "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++20",
            f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
            str(source), f"-L{torch_dir / 'lib'}", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"]


@functools.cache
def processor() -> str:
    """What code built with -march=native depends on: torch's CPU capability (what CPUID says, AVX-512 hidden or
    not) and, on Linux, the processor's feature flags (two AVX-512 processors differ in their extensions), so that a
    cache folder shared by machines keeps a build for each."""
    try:
        flags = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")][:1]
    except OSError:
        flags = []
    return "\n".join([torch.backends.cpu.get_cpu_capability(), *flags])


def _built() -> Path:
    """The operator's shared library for this processor, built into inductor's cache folder if not there yet."""
    command = compile_command(SOURCES[0])
    path = library_path(command)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as work:  # whole or not at all, whoever builds beside us
            built = Path(work) / path.name
            subprocess.run([*command, "-o", str(built)], check=True, capture_output=True, text=True)
            os.replace(built, path)
    return path


def library_path(command: list[str]) -> Path:
    """Where the library `command` builds is kept: named by all it is made of."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    made_of = [torch.__version__, processor(), *command, *(s.read_text() for s in SOURCES)]
    key = hashlib.sha256("\0".join(made_of).encode())
    return Path(cache_dir()) / "leanformers" / f"step_operators-{key.hexdigest()[:20]}.so"
