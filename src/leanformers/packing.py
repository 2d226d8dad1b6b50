"""Linear layers that read the same input, stored side by side so that one matrix product computes them all.

`pack_linears` copies the weights (and biases) of a group of nn.Linear layers into one buffer and makes each
parameter a view of its own rows of it: the same Parameter objects, names, shapes and values, so state_dict, saving,
loading and training see nothing new. `packed_linear` then runs one product over the whole buffer (a decoding step
calls one kernel instead of three, and the work splits better over threads) and returns each layer's columns.
Whenever the layers are no longer side by side (a weight replaced, moved or cast since), are wrapped or hooked, or
autograd has to reach their weights, it calls each layer as before.
"""

from __future__ import annotations

import torch

from .layers import _plain_linear, capturing, few_rows_linear, linear


def pack_linears(layers) -> bool:
    """Store the weights of `layers` (nn.Linear, same input size, dtype and device) in one buffer, and their biases
    in another when every layer has one. Returns whether they were packed; layers that cannot be are left as is."""
    weights = [layer.weight for layer in layers]
    biases = [layer.bias for layer in layers]
    if not _packable(weights) or (any(b is not None for b in biases) and not _packable(biases)):
        return False
    with torch.no_grad():
        for tensors in [weights] + ([biases] if biases[0] is not None else []):
            buffer = torch.cat([t.detach() for t in tensors])
            start = 0
            for tensor in tensors:
                tensor.data = buffer[start:start + tensor.shape[0]]
                start += tensor.shape[0]
    return True


def packed_linear(x, layers) -> tuple:
    """(layer(x) for layer in layers), through one product when `pack_linears` packed them and they still are."""
    if capturing() or not all(map(_plain_linear, layers)):  # a recorded graph cannot read memory addresses
        return tuple(few_rows_linear(x, layer) for layer in layers)
    parameters = [layer._parameters for layer in layers]  # plain nn.Linear: the fast way to its attributes
    weight = _side_by_side([p["weight"] for p in parameters])
    bias = None if parameters[0]["bias"] is None else _side_by_side([p["bias"] for p in parameters])
    if (weight is None or (bias is None and parameters[0]["bias"] is not None)
            or (torch.is_grad_enabled() and weight.requires_grad)):
        return tuple(few_rows_linear(x, layer) for layer in layers)
    return linear(x, weight, bias).split([p["weight"].shape[0] for p in parameters], -1)


def _packable(tensors) -> bool:
    first = tensors[0]
    return all(t is not None and t.device == first.device and t.dtype == first.dtype and t.shape[1:] == first.shape[1:]
               and t.device.type != "meta" for t in tensors)


def _side_by_side(tensors):
    """One tensor over `tensors` when they lie one after the other in the same memory, else None."""
    first = tensors[0]
    end, dtype, row_shape = first.data_ptr(), first.dtype, first.shape[1:]
    for tensor in tensors:
        if (tensor is None or tensor.data_ptr() != end or not tensor.is_contiguous() or tensor.dtype is not dtype
                or tensor.shape[1:] != row_shape):
            return None
        end += tensor.numel() * tensor.element_size()
    storage = first.untyped_storage()  # separate tensors can also lie end to end: they must share one buffer
    if end > storage.data_ptr() + storage.nbytes():
        return None
    rows = sum(tensor.shape[0] for tensor in tensors)
    return first.as_strided((rows, *first.shape[1:]), first.stride())
