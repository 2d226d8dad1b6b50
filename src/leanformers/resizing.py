"""resize_token_embeddings: grow or shrink the vocabulary of a model, keeping the rows it already has."""

from __future__ import annotations

import torch
from torch import nn


def resize_token_embeddings(model, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True) -> nn.Embedding:
    old = model.get_input_embeddings()
    if new_num_tokens is None and pad_to_multiple_of is None:
        return old
    size = new_num_tokens if new_num_tokens is not None else old.weight.shape[0]
    if pad_to_multiple_of is not None:
        size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
    new = _resized_embedding(model, old, size, mean_resizing)
    model.set_input_embeddings(new)
    output = model.get_output_embeddings()
    if output is not None and not getattr(model.config, "tie_word_embeddings", False):
        _resize_output(model, output, size, mean_resizing)
    elif output is not None:
        if getattr(output, "bias", None) is not None:
            old_bias = output.bias
            output.bias = nn.Parameter(_resized_rows(old_bias.data, size, lambda rows: rows.zero_()))
            _retarget_tied_sources(model, old_bias, output.bias)
        if hasattr(output, "out_features"):
            output.out_features = size
    model.config.vocab_size = size
    model.tie_weights()
    return model.get_input_embeddings()


def _retarget_tied_sources(model, old: nn.Parameter, new: nn.Parameter):
    """A parameter that `old` was tied to (e.g. BERT's cls.predictions.bias) becomes `new`; else tie_weights would
    put the old-sized tensor back into the output layer."""
    for source in set(model.tied_weight_pairs().values()):
        if model.get_parameter(source) is old:
            parent, _, attr = source.rpartition(".")
            setattr(model.get_submodule(parent), attr, new)


def _resized_embedding(model, old: nn.Embedding, size: int, mean_resizing: bool) -> nn.Embedding:
    new = nn.Embedding(size, old.embedding_dim, padding_idx=old.padding_idx if (old.padding_idx or 0) < size else None,
                       device=old.weight.device, dtype=old.weight.dtype)
    new.weight.data = _resized_rows(old.weight.data, size, _new_rows_init(model, old.weight.data, mean_resizing))
    return new


def _resize_output(model, output: nn.Linear, size: int, mean_resizing: bool):
    output.weight = nn.Parameter(_resized_rows(output.weight.data, size,
                                               _new_rows_init(model, output.weight.data, mean_resizing)))
    if output.bias is not None:
        output.bias = nn.Parameter(_resized_rows(output.bias.data, size, lambda rows: rows.zero_()))
    output.out_features = size


def _resized_rows(old: torch.Tensor, size: int, init) -> torch.Tensor:
    keep = min(size, old.shape[0])
    out = torch.empty((size, *old.shape[1:]), dtype=old.dtype, device=old.device)
    out[:keep] = old[:keep]
    if size > keep:
        init(out[keep:])
    return out


def _new_rows_init(model, old: torch.Tensor, mean_resizing: bool):
    """New rows drawn around the old rows' mean and covariance, so that they do not disturb the output scores."""
    std = getattr(model.config, "initializer_range", 0.02)
    if not mean_resizing:
        return lambda rows: rows.normal_(0.0, std)

    def init(rows):
        data = old.float()
        mean = data.mean(dim=0)
        centred = data - mean
        covariance = centred.T @ centred / data.shape[0]
        try:
            dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=1e-9 * covariance)
            rows.copy_(dist.sample((rows.shape[0],)).to(rows.dtype))
        except ValueError:  # covariance not positive definite (e.g. tiny vocabularies): use the mean
            rows.copy_(mean.expand_as(rows).to(rows.dtype))
    return torch.no_grad()(init)
