"""ModelOutput behaves like the reference's: a dict, a tuple and an object at once, with None fields skipped."""

import copy
import dataclasses
import importlib
import pickle

import pytest
import torch
import transformers
from torch.utils import _pytree
from transformers import modeling_outputs as ref_outputs

from leanformers import ModelOutput, outputs

# Newer reference outputs call the key/value cache `cache`; ours keep `past_key_values` and read `cache` as an alias.
RENAMED = {"cache": "past_key_values"}


def reference_class(name: str):
    """The reference output class of the same name: in modeling_outputs, or in the model family it starts with."""
    if hasattr(ref_outputs, name):
        return getattr(ref_outputs, name)
    lowered = name.lower()
    families = sorted((f for f in dir(transformers.models) if lowered.startswith(f.replace("_", ""))), key=len)
    for family in reversed(families):  # longest prefix first: openai before open...
        module = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"the reference has no output class {name}")


OUR_CLASSES = [name for name, cls in vars(outputs).items()
               if isinstance(cls, type) and issubclass(cls, ModelOutput) and cls is not ModelOutput]


@pytest.mark.parametrize("name", OUR_CLASSES)
def test_fields_match_reference(name):
    ours = [f.name for f in dataclasses.fields(getattr(outputs, name))]
    theirs = [RENAMED.get(f.name, f.name) for f in dataclasses.fields(reference_class(name))]
    assert ours == theirs


def both(**fields):
    """The same MaskedLMOutput built by both libraries."""
    return outputs.MaskedLMOutput(**fields), ref_outputs.MaskedLMOutput(**fields)


def views(out) -> dict:
    """Everything a caller can observe about an output, by key, by index and by attribute."""
    tup = out.to_tuple()
    return {
        "keys": list(out.keys()), "len": len(out), "iter": list(out),
        "tuple_ids": [id(v) for v in tup], "index_ids": [id(out[i]) for i in range(len(tup))],
        "slice_ids": [id(v) for v in out[1:]], "neg_id": id(out[-1]) if tup else None,
        "key_ids": {k: id(out[k]) for k in out.keys()}, "attr_ids": {k: id(getattr(out, k)) for k in out.keys()},
        "none_attrs": sorted(f.name for f in dataclasses.fields(out) if getattr(out, f.name) is None),
        "contains": {f.name: f.name in out for f in dataclasses.fields(out)},
        "get_missing": out.get("loss", "default"),
    }


@pytest.fixture
def tensors():
    g = torch.Generator().manual_seed(0)
    return {name: torch.randn(2, 3, generator=g) for name in ("loss", "logits", "h0", "h1", "a0")}


@pytest.mark.parametrize("present", [
    ("logits",), ("loss", "logits"), ("logits", "attentions"), ("loss", "logits", "hidden_states", "attentions")])
def test_access_like_reference(tensors, present):
    values = {"loss": tensors["loss"], "logits": tensors["logits"],
              "hidden_states": (tensors["h0"], tensors["h1"]), "attentions": (tensors["a0"],)}
    ours, theirs = both(**{k: values[k] for k in present})
    assert views(ours) == views(theirs)
    assert ours[0] is values[present[0]] and ours.logits is ours["logits"] is values["logits"]


def test_setting_updates_key_and_attribute_like_reference(tensors):
    ours, theirs = both(logits=tensors["logits"])
    hidden = (tensors["h0"],)
    for out in (ours, theirs):
        out.loss = tensors["loss"]                  # a None field set later becomes a key (appended)
        out["hidden_states"] = hidden               # a key set by item is an attribute too
        out.logits = tensors["a0"]                  # replacing a present field updates its key
    assert views(ours) == views(theirs)
    assert ours["loss"] is ours.loss is tensors["loss"]
    assert ours.hidden_states is ours["hidden_states"] is hidden
    assert ours["logits"] is tensors["a0"]


def test_none_fields_are_skipped(tensors):
    ours, theirs = both(loss=None, logits=tensors["logits"], hidden_states=None)
    assert ours.to_tuple() == (tensors["logits"],) and len(theirs.to_tuple()) == 1
    assert ours.loss is None and "loss" not in ours
    with pytest.raises(KeyError):
        ours["loss"]
    with pytest.raises(IndexError):
        ours[1]


@pytest.mark.parametrize("operation", [
    lambda out: out.pop("logits"), lambda out: out.setdefault("loss", 1), lambda out: out.update(loss=1),
    lambda out: out.__delitem__("logits"),
], ids=["pop", "setdefault", "update", "del"])
def test_mutations_refused_like_reference(tensors, operation):
    ours, theirs = both(logits=tensors["logits"])
    with pytest.raises(Exception):
        operation(theirs)
    with pytest.raises(TypeError, match="MaskedLMOutput"):
        operation(ours)
    assert list(ours.keys()) == ["logits"]


def test_unpacking_and_dict_conversion_like_reference(tensors):
    ours, theirs = both(loss=tensors["loss"], logits=tensors["logits"])
    assert tuple(ours) == tuple(theirs) == ("loss", "logits")
    assert dict(ours).keys() == dict(theirs).keys()
    loss, logits = ours.to_tuple()
    assert loss is tensors["loss"] and logits is tensors["logits"]
    assert isinstance(ours, dict) and isinstance(ours, ModelOutput)


def test_pickle_and_deepcopy_keep_fields(tensors):
    ours, theirs = both(logits=tensors["logits"], attentions=(tensors["a0"],))
    for copied, reference in ((pickle.loads(pickle.dumps(ours)), pickle.loads(pickle.dumps(theirs))),
                              (copy.deepcopy(ours), copy.deepcopy(theirs))):
        assert type(copied) is outputs.MaskedLMOutput
        assert list(copied.keys()) == list(reference.keys())
        torch.testing.assert_close(copied.logits, tensors["logits"])


def test_pytree_like_reference(tensors):
    ours, theirs = both(loss=tensors["loss"], logits=tensors["logits"], hidden_states=(tensors["h0"],))
    our_leaves, our_spec = _pytree.tree_flatten(ours)
    their_leaves, _ = _pytree.tree_flatten(theirs)
    assert [id(t) for t in our_leaves] == [id(t) for t in their_leaves]
    doubled = _pytree.tree_map(lambda t: t * 2, ours)
    assert type(doubled) is outputs.MaskedLMOutput and list(doubled.keys()) == list(ours.keys())
    torch.testing.assert_close(doubled.hidden_states[0], tensors["h0"] * 2)
    assert _pytree.tree_unflatten(our_leaves, our_spec).logits is tensors["logits"]


def test_cache_alias_reads_past_key_values(tensors):
    cache = ((tensors["h0"], tensors["h1"]),)
    out = outputs.CausalLMOutputWithPast(logits=tensors["logits"], past_key_values=cache)
    assert out.cache is out.past_key_values is out["past_key_values"] is cache
    assert outputs.MaskedLMOutput(logits=tensors["logits"]).cache is None


def test_repr_names_fields_and_shapes(tensors):
    text = repr(outputs.MaskedLMOutput(logits=tensors["logits"]))
    assert text.startswith("MaskedLMOutput(") and "logits=Tensor(2, 3)" in text and "loss" not in text
