"""Weight products for decoding steps that torch.compile builds with frozen weights on CPU: row_products.cpp (the
compiled server's kernel) as the operator `leanformers::packed_linear`.

Each weight is packed in blocks of output columns (`pack`); under frozen weights inductor computes the packing once,
as it compiles, and keeps the packed copy as a constant of the step. The kernel reads each block once while a tile of
rows sums in registers. Steps of several rows call it (2 AVX-512 cores, batch 8, against inductor's own packed GEMMs:
GPT-2-small 1.26-1.31x, SmolLM2-135M 0.94-1.11x); one row keeps inductor's products, which read the weights as fast
and fuse more (through the operator GPT-2-small and SmolLM2-135M decoded at 0.82-0.99x). The operator is compiled for
this processor on first use (~10 s) and kept in inductor's cache folder; where it cannot be built, the steps keep
inductor's GEMMs.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name("packed_products.cpp"), Path(__file__).parent / "serving" / "row_products.cpp"]

_block: int | None = None  # the column block of the loaded operator; None: not loaded
_failed = False  # a build failed in this process: do not try again


def load() -> bool:
    """Build (once per processor and torch version) and load the operator; False, with a warning, where it cannot."""
    global _block, _failed
    if _block is None and not _failed:
        try:
            path = _built()
            torch.ops.load_library(str(path))
            torch.library.register_fake("leanformers::packed_linear")(_fake)
            _block = ctypes.CDLL(str(path)).leanformers_rows_block()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            _failed = True
            logger.warning("decoding steps keep inductor's products: packed_products.cpp could not be built (%s)",
                           getattr(error, "stderr", None) or error)
    return _block is not None


def loaded() -> bool:
    """Whether the operator is loaded: compiled steps then call it for their float32 products of several rows."""
    return _block is not None


loaded._dynamo_marked_constant = True  # read once as a graph is built, like a constant


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


def _fake(x, packed, bias, columns):
    return x.new_empty(x.shape[0], columns)


def compile_command(source: Path) -> list[str]:
    """The command (less `-o OUT`) that builds `source`, row_products.cpp or a file that includes it, into a shared
    library for this processor, with the C++ compiler inductor uses."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    torch_dir = Path(torch.__file__).parent
    return [get_cpp_compiler(), "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++20",
            f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
            str(source), f"-L{torch_dir / 'lib'}", "-ltorch_cpu", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"]


def _built() -> Path:
    """The operator's shared library for this processor, built into inductor's cache folder if not there yet."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    command = compile_command(SOURCES[0])
    made_of = [torch.__version__, torch.backends.cpu.get_cpu_capability(), *command, *(s.read_text() for s in SOURCES)]
    key = hashlib.sha256("\0".join(made_of).encode())
    path = Path(cache_dir()) / "leanformers" / f"packed_products-{key.hexdigest()[:20]}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as work:  # whole or not at all, whoever builds beside us
            built = Path(work) / path.name
            subprocess.run([*command, "-o", str(built)], check=True, capture_output=True, text=True)
            os.replace(built, path)
    return path
