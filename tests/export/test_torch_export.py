"""torch.export of every encoder with dynamic batch and sequence dimensions gives the eager outputs on other shapes
and masks than the example; torch.compile(fullgraph=True) of the encoders meets no graph break."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch.export import Dim

from .tiny import tiny_model, token_ids

# any batch and length; Longformer pads to its attention window inside the graph. Transformer-XL (a decoder whose
# memory is an output, not a cache) exports the same way. Reformer (chunk lengths) and RetriBERT (two inputs): below
ENCODERS = ["albert", "bert", "bert-generation", "camembert", "deberta", "deberta-v2", "distilbert", "electra",
            "flaubert", "longformer", "mobilebert", "roberta", "transfo-xl", "xlm", "xlm-roberta", "xlnet"]


def _inputs(model, ids, mask) -> dict:
    inputs = {"input_ids": ids}
    if "attention_mask" in inspect.signature(model.forward).parameters:
        inputs["attention_mask"] = mask
    return inputs


def _tensors(out):
    return [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def _assert_exported(model, exported, *examples):
    module = exported.module()
    with torch.no_grad():
        for inputs in examples:
            eager, got = _tensors(model(**inputs)), _tensors(module(**inputs))
            assert len(eager) == len(got) and eager
            for a, b in zip(eager, got):
                torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type", ENCODERS)
def test_export_with_dynamic_batch_and_sequence(model_type):
    model = tiny_model(model_type)
    ids, mask = token_ids()
    example = _inputs(model, ids, mask)
    exported = torch.export.export(model, (), example,
                                   dynamic_shapes={name: {0: Dim.AUTO, 1: Dim.AUTO} for name in example})
    other_ids, other_mask = token_ids(batch=3, seq=5)
    other_mask[1, :2] = 0
    _assert_exported(model, exported, example, _inputs(model, other_ids, other_mask))


def _global_mask(batch: int, seq: int, *columns) -> torch.Tensor:
    mask = torch.zeros(batch, seq, dtype=torch.long)
    mask[:, list(columns)] = 1
    return mask


def test_export_longformer_with_global_attention():
    """The global tokens are an input of the graph: other tokens, other counts per row, none at all."""
    model = tiny_model("longformer")
    ids, mask = token_ids()
    example = {"input_ids": ids, "attention_mask": mask, "global_attention_mask": _global_mask(2, 8, 0)}
    exported = torch.export.export(model, (), example,
                                   dynamic_shapes={name: {0: Dim.AUTO, 1: Dim.AUTO} for name in example})
    other_ids, other_mask = token_ids(batch=3, seq=13)
    other_mask[1, -4:] = 0
    uneven = _global_mask(3, 13, 0)
    uneven[2, 5:9] = 1
    _assert_exported(model, exported, example, dict(example, global_attention_mask=_global_mask(2, 8)),
                     {"input_ids": other_ids, "attention_mask": other_mask, "global_attention_mask": uneven})


def test_export_reformer_at_multiples_of_the_chunk_length():
    """Reformer pads a sequence longer than one chunk to a multiple of its chunk lengths, and one chunk or less
    attends without chunks: lengths are exported as a multiple of the chunk length (4 here), of two chunks or more
    up to max_position_embeddings (16); the batch is free."""
    model = tiny_model("reformer", attn_layers=["local", "lsh"], num_buckets=2, lsh_attn_chunk_length=4)
    ids, mask = token_ids()
    mask[1, :3] = 0
    length = 4 * Dim("chunks", min=2, max=4)
    exported = torch.export.export(model, (), {"input_ids": ids, "attention_mask": mask},
                                   dynamic_shapes={name: {0: Dim.AUTO, 1: length}
                                                   for name in ("input_ids", "attention_mask")})
    other_ids, other_mask = token_ids(batch=3, seq=16)
    other_mask[2, -5:] = 0
    torch.manual_seed(0)  # the LSH layer draws its rotations from torch's random state, in eager and exported alike
    state = torch.get_rng_state()
    module = exported.module()
    with torch.no_grad():
        for inputs in ({"input_ids": ids, "attention_mask": mask},
                       {"input_ids": other_ids, "attention_mask": other_mask}):
            torch.set_rng_state(state)
            eager = model(**inputs).last_hidden_state
            torch.set_rng_state(state)
            torch.testing.assert_close(_tensors(module(**inputs))[0], eager, rtol=1e-5, atol=1e-5)


def test_export_retribert():
    """The retrieval loss over questions and documents: one batch for both, each its own length."""
    model = tiny_model("retribert")
    ids, mask = token_ids()
    doc_ids, doc_mask = token_ids(seq=6)
    example = {"input_ids_query": ids, "attention_mask_query": mask, "input_ids_doc": doc_ids,
               "attention_mask_doc": doc_mask}
    batch = Dim("batch")
    exported = torch.export.export(model, (), example,
                                   dynamic_shapes={name: {0: batch, 1: Dim.AUTO} for name in example})
    other_ids, other_mask = token_ids(batch=3, seq=5)
    other_mask[1, :2] = 0
    other_doc, other_doc_mask = token_ids(batch=3, seq=9)
    _assert_exported(model, exported, example, {"input_ids_query": other_ids, "attention_mask_query": other_mask,
                                                "input_ids_doc": other_doc, "attention_mask_doc": other_doc_mask})


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
