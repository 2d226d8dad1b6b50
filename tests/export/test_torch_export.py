"""torch.export of every encoder with dynamic batch and sequence dimensions gives the eager outputs on other shapes
and masks than the example; torch.compile(fullgraph=True) of the encoders meets no graph break."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.export import Dim

from .tiny import tiny_model, token_ids

# Longformer's global attention reads the mask's values to pick the global tokens, and Reformer reads position ids
# to check its axial table: both are data-dependent branches that export cannot follow
ENCODERS = ["albert", "bert", "bert-generation", "camembert", "deberta", "deberta-v2", "distilbert", "electra",
            "flaubert", "mobilebert", "roberta", "xlm", "xlm-roberta", "xlnet"]


def _inputs(model, ids, mask) -> dict:
    inputs = {"input_ids": ids}
    if "attention_mask" in inspect.signature(model.forward).parameters:
        inputs["attention_mask"] = mask
    return inputs


def _tensors(out):
    return [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("model_type", ENCODERS)
def test_export_with_dynamic_batch_and_sequence(model_type):
    model = tiny_model(model_type)
    ids, mask = token_ids()
    example = _inputs(model, ids, mask)
    exported = torch.export.export(model, (), example,
                                   dynamic_shapes={name: {0: Dim.AUTO, 1: Dim.AUTO} for name in example})
    other_ids, other_mask = token_ids(batch=3, seq=5)
    other_mask[1, :2] = 0
    module = exported.module()
    with torch.no_grad():
        for inputs in (example, _inputs(model, other_ids, other_mask)):
            eager, got = _tensors(model(**inputs)), _tensors(module(**inputs))
            assert len(eager) == len(got) and eager
            for a, b in zip(eager, got):
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ["bert", "distilbert", "roberta", "albert", "electra", "deberta-v2"])
def test_compile_fullgraph(model_type):
    torch._dynamo.reset()
    model = tiny_model(model_type)
    ids, mask = token_ids()
    mask[1, :3] = 0
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # graph capture only: no kernels to build
    with torch.no_grad():
        for a, b in zip(_tensors(model(ids, mask)), _tensors(compiled(ids, mask))):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ["gpt2", "llama", "mistral", "qwen2", "ctrl"])
def test_export_single_step_with_static_cache(model_type):
    """The exported step, called token by token from an empty cache, gives the eager logits of the whole prompt."""
    from leanformers.export import StaticCacheStep

    model = tiny_model(model_type, "CausalLM")
    ids, _ = token_ids(batch=2, seq=6)
    step = StaticCacheStep(model, batch_size=2, max_cache_len=10)
    run = torch.export.export(step, (ids[:, :1], torch.tensor([0]))).module()
    with torch.no_grad():
        eager = model(ids, use_cache=True).logits
        stepped = torch.cat([run(ids[:, i:i + 1], torch.tensor([i])) for i in range(ids.shape[1])], dim=1)
    torch.testing.assert_close(stepped, eager, rtol=1e-5, atol=1e-5)
