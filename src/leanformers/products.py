"""Products of activations with a weight (`linear`), in the fastest form measured for the number of rows."""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F
from torch.nn.modules import module as nn_module

from . import packed_weights, step_operators


def few_rows_linear(x, layer):
    """`layer(x)` for an nn.Linear, through `linear` (the fastest form for the number of rows) unless the layer is
    wrapped, patched or hooked, in which case the layer itself is called."""
    return linear(x, layer.weight, layer.bias) if plain_linear(layer) else layer(x)


def linear(x, weight, bias=None):
    """F.linear(x, weight, bias) for an (out, in) weight, in the fastest form measured for the number of rows.

    On CPU, in float32 and without autograd, with a row-major weight: a small batch decoded one token at a time (2
    to 32 rows on AMD, 16 to 32 on Intel: `_COLUMN_FORM_ROWS`) runs as `weight @ x.T`, which streams a weight that
    does not fit in cache 1.3 to 2.5 times as fast as the `x @ weight.T` form on the machines measured; where MKL
    shares rows out poorly (`SPLIT_PAYS`), one row and 33 to 256 rows (a prompt, an encoder forward of a short text)
    share the weight's rows out among torch's threads (`_split_linear`). Where oneDNN pays (`ONEDNN_PAYS`), two rows
    or more run through oneDNN on a packed copy of the weight (packed_weights.py). torch.compile keeps these forms
    but oneDNN's, unless it freezes the weights: inductor then packs them for its own faster kernels, or, where the
    operator of step_operators.py is loaded (a compiled decoding step loads it), for that one. Values agree with
    F.linear to float32 rounding.
    """
    # cheapest tests first: this runs for every linear layer of every decoding step
    if not _eager_float32(x, weight):
        return F.linear(x, weight, bias)  # traced or exported: one form for every batch size
    if torch.compiler.is_compiling() and step_operators.compiling_frozen_weights():  # weights packed as it compiles
        # one row keeps inductor's own products: both read the weights at the memory's speed, and theirs fuse more
        several_rows = x.numel() > x.shape[-1]
        return (step_operators.linear(x, weight, bias) if several_rows and step_operators.loaded()
                else F.linear(x, weight, bias))
    if _onednn_form(x, weight, bias):
        return packed_weights.linear(x, weight, bias)
    if weight.dim() != 2 or not weight.is_contiguous():
        return F.linear(x, weight, bias)
    rows = x.numel() // max(x.shape[-1], 1)
    if not 1 <= rows <= _SPLIT_MAX_ROWS:
        return F.linear(x, weight, bias)
    if rows == 1 or rows > 32:  # a torch function mode (batch_invariant) must see the F.linear call it replaces
        mode = not torch.compiler.is_compiling() and torch._C._is_torch_function_mode_enabled()
        return F.linear(x, weight, bias) if mode or not SPLIT_PAYS else _split_linear(x, weight, bias, rows)
    if rows < _COLUMN_FORM_ROWS:
        return F.linear(x, weight, bias)
    columns = x.reshape(rows, -1).t()
    out = torch.mm(weight, columns) if bias is None else torch.addmm(bias[:, None], weight, columns)  # (out, rows)
    return out.t().contiguous().view(*x.shape[:-1], weight.shape[0])


def linear_gelu(x, weight, bias=None):
    """F.gelu(linear(x, weight, bias)) (the exact GELU); where `linear` takes oneDNN, inside its product with
    AVX-512 and right after it with AVX2 only."""
    if _eager_float32(x, weight) and _onednn_form(x, weight, bias):
        if GELU_IN_PRODUCT:
            return packed_weights.linear(x, weight, bias, "gelu")
        return torch.ops.aten.gelu_(packed_weights.linear(x, weight, bias))  # the product's own new output
    return F.gelu(linear(x, weight, bias))


def _eager_float32(x, weight) -> bool:
    """Float32 on CPU without autograd, not traced or exported: where the forms of this module apply."""
    return (x.dtype is torch.float32 and weight.dtype is torch.float32 and x.is_cpu
            and not (torch.is_grad_enabled() and (weight.requires_grad or x.requires_grad))
            and not torch.jit.is_tracing() and not torch.compiler.is_exporting())


def _onednn_form(x, weight, bias) -> bool:
    """Two rows or more where oneDNN pays, of operands F.linear accepts (else its error is the clearer) and a
    row-major weight; not while torch.compile traces (the packed copies live outside its graph), under a torch
    function mode (batch_invariant must see F.linear) or under autocast (which would not cast the oneDNN call)."""
    return (ONEDNN_PAYS and x.numel() > x.shape[-1] and weight.dim() == 2 and weight.is_contiguous()
            and weight.shape[1] == x.shape[-1] and weight.shape[0] > 0
            and (bias is None or bias.shape == weight.shape[:1])
            and not torch.compiler.is_compiling() and not torch._C._is_torch_function_mode_enabled()
            and not torch.is_autocast_enabled("cpu"))


def _split_linear(x, weight, bias, rows: int):
    """F.linear with the weight's rows shared out among torch's threads: one batched product of the input with equal
    blocks of the weight's rows, a block per thread.

    For one row the matrix kernels run on one core, which streams a large weight at two thirds of the bandwidth two
    cores reach; for 33-256 rows they share the work out less evenly than one block per thread does (BERT-base layers
    at 128 rows: 1.26x on 2 cores). The same kernel computes each output, so the values equal F.linear's (bit for bit
    at the model sizes measured). Small weights stay on F.linear: they sit in cache and the split only adds work.
    """
    parts = _thread_count()
    out_features, in_features = weight.shape
    if parts < 2 or weight.numel() < _SPLIT_MIN_WEIGHT or out_features < 2 * parts:
        return F.linear(x, weight, bias)
    even = out_features - out_features % parts
    block = even // parts
    flat = x.reshape(1, rows, in_features).expand(parts, rows, in_features)
    blocks = weight.as_strided((parts, in_features, block), (block * in_features, 1, in_features))  # (in, block)s
    if bias is None:
        out = torch.bmm(flat, blocks)                                   # (parts, rows, block)
    else:
        out = torch.baddbmm(bias[:even].view(parts, 1, block), flat, blocks)
    # one copy into (rows, out): measured faster than the products writing into a strided view of the result
    out = out.view(rows, even) if rows == 1 else out.transpose(0, 1).reshape(rows, even)
    if even < out_features:
        out = torch.cat((out, F.linear(flat[0], weight[even:], None if bias is None else bias[even:])), 1)
    return out.view(*x.shape[:-1], out_features)


_SPLIT_MIN_WEIGHT = 1 << 18  # elements: 1 MiB of float32, about where the split starts to pay
_SPLIT_MAX_ROWS = 256  # beyond it the matrix kernels use every thread well (measured: 384 rows gain nothing)


def _cpu_vendor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The x86 vendor string (GenuineIntel, AuthenticAMD, ...), or "" where it cannot be read."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:  # not Linux: Windows names the vendor at the end of platform.processor()
        return platform.processor().rpartition(" ")[2]
    return ""


# MKL's own forms differ by maker. On an AMD EPYC (AVX2, 2 threads) it ran a one-row product on one core and split
# 128 rows unevenly between two threads: sharing the weight's rows out among the threads paid (GPT-2-small's products
# at one row 33 -> 21-23 ms, BERT-base's layers at 128 rows 1.26x), and so did `weight @ x.T` from 2 rows on. On an
# Intel Xeon (AVX-512) MKL shares both well and the split costs time (GPT-2-small's layers at one row 7.7 -> 9.3 ms,
# at 128 rows 3-7%), and `weight @ x.T` pays only from about 16 rows (30 layers of SmolLM2-135M's shapes at 8 rows:
# 26-41 ms against 38-50 with it, at 16 rows even, at 32 rows 58 against 68; GPT-2-small's layers 1.3x faster with it
# at 16 rows, even at 8). Other processors keep the forms first measured (AMD's).
INTEL = _cpu_vendor() == "GenuineIntel"
SPLIT_PAYS = not INTEL
# On an AMD EPYC, oneDNN's products of packed weights beat every MKL form from two rows on (2-5x with AVX-512,
# 1.1-2.5x with AVX2 only: packed_weights.py); one row keeps the split.
ONEDNN_PAYS = not INTEL and packed_weights.available()
# oneDNN's exact GELU inside its product costs nothing with AVX-512, but with AVX2 only it took 490 us of BERT-base's
# 768 -> 3072 product at 128 rows (2,460 -> 2,950 us; torch's GELU afterwards, in place: 60 us)
GELU_IN_PRODUCT = torch.backends.cpu.get_cpu_capability() == "AVX512"
_COLUMN_FORM_ROWS = 16 if INTEL else 2  # fewest rows run as weight @ x.T


def _thread_count() -> int:
    return torch.get_num_threads()


# torch.compile reads it once, as it builds a graph (a call would split the graph): what the decorator
# torch.compiler.assume_constant_result marks, set here because that decorator imports the compiler stack
_thread_count._dynamo_marked_constant = True


def plain_linear(module) -> bool:
    """An nn.Linear whose call is exactly F.linear: no subclass, no replaced forward, no hook of its own or global."""
    if (type(module) is not torch.nn.Linear or "forward" in module.__dict__ or module._forward_hooks
            or module._forward_pre_hooks):
        return False
    return not (nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)
