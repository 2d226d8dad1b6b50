"""TorchScript: `torchscript=True` gives tuples and untied copies of tied weights like Transformers 4.55.4, and
torch.jit.trace of every architecture's base model and main head gives the eager outputs, also after
torch.jit.save / torch.jit.load and on inputs other than the example (another mask, other ids)."""

from __future__ import annotations

import inspect
import io
import warnings

import pytest
import torch

import leanformers
from leanformers.auto import REGISTRY
from tests.parity.legacy import run_legacy

from .tiny import CONFIGS, SEQ2SEQ, tiny_model, token_ids

MAIN_HEADS = ("Seq2SeqLM", "CausalLM", "MaskedLM")
# RetriBERT's forward takes query and document ids (test_trace_retribert)
NOT_TRACED = {"retribert"}
CASES = [(model_type, head) for model_type in sorted(set(CONFIGS) - NOT_TRACED)
         for head in ("", next(h for h in MAIN_HEADS if h in REGISTRY[model_type].heads))]


def _model(model_type, head, **overrides):
    causal = head == "CausalLM" and model_type not in SEQ2SEQ  # the BERT family's causal heads need is_decoder
    return tiny_model(model_type, head, torchscript=True, **({"is_decoder": True} if causal else {}), **overrides)


def _inputs(model, model_type) -> dict:
    ids, mask = token_ids()
    params = list(inspect.signature(model.forward).parameters)
    inputs = {"input_ids": ids}
    if "attention_mask" in params:
        inputs["attention_mask"] = mask
    if model_type in SEQ2SEQ and "decoder_input_ids" in params:
        inputs["decoder_input_ids"] = ids[:, :4]
    return inputs


def _trace(model, inputs):
    """torch.jit.trace with positional inputs when the forward takes them in this order (as users write it)."""
    if list(inspect.signature(model.forward).parameters)[:len(inputs)] == list(inputs):
        return torch.jit.trace(model, tuple(inputs.values())), lambda module, kw: module(*kw.values())
    return torch.jit.trace(model, example_kwarg_inputs=inputs), lambda module, kw: module(**kw)


def _leaves(value):
    return [t for t in torch.utils._pytree.tree_leaves(value) if isinstance(t, torch.Tensor)]


def _assert_same(eager, traced):
    eager, traced = _leaves(eager), _leaves(traced)
    assert len(eager) == len(traced) and eager
    for a, b in zip(eager, traced):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_type,head", CASES, ids=lambda v: v or "base")
def test_trace_matches_eager_and_survives_save_load(model_type, head):
    model = _model(model_type, head)
    inputs = _inputs(model, model_type)
    padded = dict(inputs, **({"attention_mask": inputs["attention_mask"].clone()} if "attention_mask" in inputs
                              else {}))
    if "attention_mask" in padded:
        padded["attention_mask"][1, :3] = 0
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced, call = _trace(model, inputs)  # traced on an all-ones mask, run on a padded one too
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        other = dict(padded, input_ids=padded["input_ids"].flip(0))
        for example in (inputs, padded, other):
            eager = model(**example)
            assert isinstance(eager, tuple)
            _assert_same(eager, call(traced, example))
            _assert_same(eager, call(loaded, example))
    ours = [w for w in caught if not isinstance(w.message, torch.jit.TracerWarning) and "leanformers" in w.filename]
    assert ours == []


def test_trace_with_input_ids_only():
    model = _model("bert", "MaskedLM")
    ids, _ = token_ids()
    with torch.no_grad():
        traced = torch.jit.trace(model, (ids,))
        _assert_same(model(ids), traced(ids))


def test_torchscript_flag_matches_legacy_reference(tmp_path):
    """from_pretrained(torchscript=True): tuple outputs, the tied decoder a separate copy with the same values,
    as Transformers 4.55.4 does; the config flag alone does the same."""
    tiny_model("bert", "MaskedLM").save_pretrained(tmp_path)
    ids, mask = token_ids()
    theirs = run_legacy("""
        model = transformers.BertForMaskedLM.from_pretrained(payload["folder"], torchscript=True).eval()
        with torch.no_grad():
            out = model(payload["ids"], payload["mask"])
        decoder, embedding = model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight
        result = {"tuple": isinstance(out, tuple), "out": list(out),
                  "shared": decoder.data_ptr() == embedding.data_ptr(), "equal": bool(torch.equal(decoder, embedding))}
    """, {"folder": str(tmp_path), "ids": ids, "mask": mask})
    ours = leanformers.BertForMaskedLM.from_pretrained(tmp_path, torchscript=True)
    config = leanformers.AutoConfig.from_pretrained(tmp_path, torchscript=True)
    for model in (ours, leanformers.BertForMaskedLM.from_pretrained(tmp_path, config=config)):
        with torch.no_grad():
            out = model(ids, mask)
        decoder, embedding = model.cls.predictions.decoder.weight, model.bert.embeddings.word_embeddings.weight
        assert isinstance(out, tuple) == theirs["tuple"] and len(out) == len(theirs["out"])
        _assert_same(tuple(theirs["out"]), out)
        assert (decoder.data_ptr() == embedding.data_ptr()) == theirs["shared"] is False
        assert torch.equal(decoder, embedding) == theirs["equal"] is True


@pytest.mark.parametrize("model_type", sorted(SEQ2SEQ))
def test_trace_encoder_of_encoder_decoder(model_type):
    encoder = _model(model_type, "Seq2SeqLM").get_encoder()
    ids, mask = token_ids()
    padded = mask.clone()
    padded[1, :3] = 0
    with torch.no_grad():
        traced = torch.jit.trace(encoder, (ids, mask))
        for example in ((ids, mask), (ids.flip(0), padded)):
            _assert_same(encoder(*example), traced(*example))


def test_trace_retribert():
    model = tiny_model("retribert", "", torchscript=True)
    ids, mask = token_ids()
    padded = mask.clone()
    padded[1, :3] = 0
    with torch.no_grad():
        traced = torch.jit.trace(model, (ids, mask, ids.flip(0), mask))
        for example in ((ids, mask, ids.flip(0), mask), (ids.flip(0), padded, ids, padded)):
            _assert_same(model(*example), traced(*example))


def _global_mask(batch: int, seq: int, *columns) -> torch.Tensor:
    mask = torch.zeros(batch, seq, dtype=torch.long)
    mask[:, list(columns)] = 1
    return mask


def test_trace_longformer_with_global_attention_and_other_lengths():
    """Traced with a global_attention_mask, the module follows other global tokens, and other lengths than the
    example (padded to the attention window inside the graph)."""
    model = _model("longformer", "")
    ids, mask = token_ids(seq=8)
    with torch.no_grad():
        traced = torch.jit.trace(model, (ids, mask, _global_mask(2, 8, 0)))
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        other_ids, other_mask = token_ids(batch=3, seq=11)
        other_mask[1, -3:] = 0
        for example in ((ids, mask, _global_mask(2, 8, 0)), (ids.flip(0), mask, _global_mask(2, 8, 1, 5)),
                        (ids, mask, _global_mask(2, 8)), (other_ids, other_mask, _global_mask(3, 11, 0, 2, 3))):
            eager = model(*example)
            _assert_same(eager, traced(*example))
            _assert_same(eager, loaded(*example))


def test_trace_reformer_lsh_draws_its_rotations_in_the_graph():
    """LSH layers without hash_seed draw new rotations each call from torch's random state, traced as in eager;
    with hash_seed (rotations re-seeded on every call, which a graph cannot do) tracing is refused."""
    lsh = dict(attn_layers=["local", "lsh"], num_buckets=2, lsh_attn_chunk_length=4, num_hashes=2)
    model = _model("reformer", "", **lsh)
    ids, mask = token_ids()
    mask[1, :3] = 0

    def seeded(module, *args):
        torch.manual_seed(5)
        return module(*args)

    with torch.no_grad():
        traced = torch.jit.trace(model, (ids, mask), check_trace=False)  # the check would draw other rotations
        for example in ((ids, mask), (ids.flip(0), torch.ones_like(mask))):
            _assert_same(seeded(model, *example), seeded(traced, *example))
        with pytest.raises(ValueError, match="hash_seed=3: LSH attention re-seeds its rotations.*hash_seed=None"):
            torch.jit.trace(_model("reformer", "", hash_seed=3, **lsh), (ids, mask))
        with pytest.raises(ValueError, match="cache \\(past_buckets_states\\).*use_cache=False"):
            torch.jit.trace(lambda i: model(i, use_cache=True), (ids,))


@pytest.mark.parametrize("model_type", ["distilbert", "longformer", "bart", "reformer"])
def test_checks_raise_no_tracer_warning(model_type):
    """Input checks on sizes and values (position limits, Reformer's axial table) are made in eager runs only, so
    tracing an encoder meets no TracerWarning from them (Reformer's trace is valid for the chunk layout of the
    example's length: its chunking and padding branches on the length still warn, and are left out here)."""
    model = _model(model_type, "")
    model = model.get_encoder() if model_type == "bart" else model
    ids, mask = token_ids()
    structural = ("reformer.py", "reformer_attention.py")
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.trace(model, (ids, mask))
    ours = [f"{w.filename}:{w.lineno}" for w in caught if isinstance(w.message, torch.jit.TracerWarning)
            and "leanformers" in w.filename and not w.filename.endswith(structural)]
    assert ours == []
