"""Opt-in low-precision CPU inference: `from_pretrained(path, quantize="int8")` or `model.quantize("int8")`.

Every `nn.Linear` and GPT-2-style `Conv1D` of a float32 CPU model is replaced, at the same module path, by a frozen
`QuantizedLinear` holding an int8 weight, symmetric per output channel (scale = max |w| of the row / 127):

- "int8": weight-only. A few rows (a decoding step) go through torch's int8-weight kernel, whose fast CPU form takes
  bfloat16 activations: the layer's input and its raw output pass through bfloat16, then the float32 channel scale
  and bias are applied in float32. More rows (a prompt) multiply float32 activations by the weight dequantised to
  float32. Everything outside these layers (embeddings, norms, attention, residuals, logits processing) stays float32.
- "int8-dynamic": int8 weights and int8 activations quantised at each call with one scale for the whole input
  (fbgemm's dynamic linear; a 7-bit activation range so that AVX2's 16-bit pair sums cannot saturate), float32
  output. Faster, less exact: inputs with a few outlier features (as in most LLMs) leave the rest few levels.

Layers with fewer than `MIN_OUT_FEATURES` outputs (classification, span and score heads) stay float32: they cost
nothing and their scores are what users read. Embeddings stay float32, and so does the LM head (the output
embeddings) in "int8" mode: an int8 head moves the logits enough to flip close greedy choices, for little speed; in
"int8-dynamic" mode, the fast one, the head is quantized too. A quantized model is for inference only: it cannot
be trained, saved (save the float32 model before quantizing), or moved to another device or dtype.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .errors import QuantizationError

MODES = ("int8", "int8-dynamic")
MIN_OUT_FEATURES = 16
# up to this many rows torch's int8-weight kernel (_weight_int8pack_mm, bfloat16 activations) beats dequantising
# the weight (measured on AVX2, one thread); it needs in_features to be a multiple of 8
FEW_ROWS = 16


def _is_conv1d(module: nn.Module) -> bool:
    """GPT-2's Conv1D (models/gpt2.py, a higher floor): a linear layer whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "nx")


def _quantizable(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return module.out_features >= MIN_OUT_FEATURES
    return _is_conv1d(module) and module.nf >= MIN_OUT_FEATURES


def int8_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 weight, float32 scale per row) of an (out, in) float weight, symmetric: w ~ q * scale[:, None]."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127  # an all-zero row stays zero
    return torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8), scale


def _pack_dynamic(q: torch.Tensor, scale: torch.Tensor, bias):
    """fbgemm's packed weight for quantized::linear_dynamic, built from a per-channel qint8 tensor."""
    zero_points = torch.zeros(q.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # the packed-weight op still takes a qint8 tensor; nothing else is kept of it
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        try:
            qweight = torch._make_per_channel_quantized_tensor(q, scale.double(), zero_points, 0)
            return torch.ops.quantized.linear_prepack(qweight, bias)
        except (RuntimeError, AttributeError) as err:
            raise QuantizationError(
                f'quantize="int8-dynamic" needs torch\'s fbgemm quantized engine (torch.backends.quantized.engine '
                f'is "{torch.backends.quantized.engine}"): {err}. Use quantize="int8" instead.') from None


class QuantizedLinear(nn.Module):
    """A frozen int8 stand-in for an nn.Linear or Conv1D: same input and output shapes, float32 in and out."""

    def __init__(self, weight: torch.Tensor, bias, mode: str, conv1d_layout: bool = False):
        """`weight` is (out, in); `conv1d_layout` records that the replaced layer stored it (in, out)."""
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.mode, self.conv1d_layout = mode, conv1d_layout
        q, scale = int8_per_channel(weight)
        bias = None if bias is None else bias.detach().float().clone()
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", bias)
        if mode == "int8":
            self.register_buffer("weight_int8", q)
            self.register_buffer("_unit_scale", torch.ones(q.shape[0], dtype=torch.bfloat16), persistent=False)
        else:
            self.register_buffer("weight_int8", None)
            self._packed = _pack_dynamic(q, scale, bias)

    @property
    def weight(self) -> torch.Tensor:
        """The float32 weight the int8 one stands for, in the replaced layer's layout; computed on each access."""
        q = self.weight_int8
        if q is None:
            q = torch.ops.quantized.linear_unpack(self._packed)[0].int_repr()
        weight = q.float() * self.weight_scale[:, None]
        return weight.t() if self.conv1d_layout else weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad and torch.is_grad_enabled():
            raise QuantizationError(_NO_TRAINING)
        if x.dtype != torch.float32:
            raise QuantizationError(f"A quantized layer takes float32 inputs, got {x.dtype}; quantized models run "
                                    f"in float32 (do not cast the model or its inputs).")
        shape = x.shape
        rows = x.reshape(-1, self.in_features)  # (rows, in)
        if self.mode == "int8-dynamic":
            out = torch.ops.quantized.linear_dynamic(rows.contiguous(), self._packed, True)
        elif 0 < rows.shape[0] <= FEW_ROWS and self.in_features % 8 == 0:  # other widths: wrong sums or a crash
            raw = torch._weight_int8pack_mm(rows.to(torch.bfloat16), self.weight_int8, self._unit_scale).float()
            out = raw.mul_(self.weight_scale) if self.bias is None else torch.addcmul(self.bias, raw,
                                                                                      self.weight_scale)
        else:
            out = F.linear(rows, self.weight_int8.float()).mul_(self.weight_scale)
            out = out if self.bias is None else out.add_(self.bias)
        return out.view(*shape[:-1], self.out_features)

    def train(self, mode: bool = True):
        if mode:
            raise QuantizationError(_NO_TRAINING)
        return super().train(False)

    def _apply(self, fn, recurse=True):
        probe = fn(torch.zeros(1))  # what .to() / .half() / .cuda() would do to a float32 CPU tensor
        if probe.device.type != "cpu" or probe.dtype != torch.float32:
            raise QuantizationError(f"A quantized model stays a float32 CPU model (asked: {probe.dtype} on "
                                    f"{probe.device}). Load the float32 model again and move or cast that one.")
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        raise QuantizationError(f"{prefix.rstrip('.')} is quantized ({self.mode}): a quantized model has no "
                                f"checkpoint to save. Save the float32 model before quantizing, and quantize it "
                                f"again after loading: from_pretrained(path, quantize=\"{self.mode}\").")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        raise QuantizationError(f"{prefix.rstrip('.')} is quantized ({self.mode}) and cannot load weights. Load "
                                f"them into the float32 model, then quantize it.")

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"mode={self.mode}")


_NO_TRAINING = ("A quantized model is for inference only: its int8 layers have no gradients. Train the float32 model "
                "(without quantize=), then quantize it for inference.")


def quantize_model(model: nn.Module, mode: str, lm_head: bool | None = None) -> nn.Module:
    """Replaces, in place, the linear layers of a float32 CPU `model` by `QuantizedLinear`s (see the module doc).
    `lm_head`: whether the output embeddings are quantized too; by default only in "int8-dynamic" mode. Returns the
    model, in eval mode, without gradients."""
    if mode not in MODES:
        raise QuantizationError(f"quantize={mode!r} is not a supported mode; use one of {', '.join(MODES)}.")
    done = getattr(model, "quantization_mode", None)
    if done is not None:
        if done != mode:
            raise QuantizationError(f"The model is already quantized ({done}); load the float32 model again to "
                                    f"quantize it as {mode}.")
        return model
    _check_float32_cpu(model)
    model.eval()  # before any layer is replaced: a quantized layer refuses train(True)
    model.requires_grad_(False)  # the float32 parts (embeddings, norms) are frozen too
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    lm_head = mode == "int8-dynamic" if lm_head is None else lm_head
    skip = {id(head)} if head is not None and not lm_head else set()
    replaced: dict[int, nn.Module] = {}  # a layer shared by two paths stays shared
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in replaced:
                setattr(parent, name, replaced[id(child)])
            elif _quantizable(child) and id(child) not in skip:
                conv1d = _is_conv1d(child)
                weight = child.weight.t() if conv1d else child.weight  # (out, in)
                replaced[id(child)] = QuantizedLinear(weight, child.bias, mode, conv1d_layout=conv1d)
                setattr(parent, name, replaced[id(child)])
    model.quantization_mode = mode
    return model


def _check_float32_cpu(model: nn.Module):
    for name, tensor in model.named_parameters():
        if tensor.device.type != "cpu":
            raise QuantizationError(f"quantize works on CPU models; {name} is on {tensor.device}. Load the model "
                                    f"on the CPU (no device_map/device) to quantize it.")
        if tensor.is_floating_point() and tensor.dtype != torch.float32:
            raise QuantizationError(f"quantize works on float32 models; {name} is {tensor.dtype}. Load with "
                                    f"dtype=torch.float32, or call model.float() first.")
