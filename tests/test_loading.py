"""The weight-loading core, exercised through BERT: files, shards, dtypes, devices, partial checkpoints, tying,
config overrides and bad input. Every checkpoint is written by the reference (or by us and read by the reference)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

import leanformers
from leanformers.errors import CheckpointError, ConfigError, ResourceNotFoundError, UnknownModelTypeError
from leanformers.models import bert_heads as bert

from parity.harness import TINY, assert_outputs_close, random_inputs, save_reference_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Reference-written checkpoints: base model, masked LM, 3-label classifier."""
    out = {}
    for name, extra in (("BertModel", {}), ("BertForMaskedLM", {}), ("BertForSequenceClassification",
                                                                     {"num_labels": 3})):
        out[name] = tmp_path_factory.mktemp(name)
        save_reference_model(name, "BertConfig", out[name], **TINY, **extra)
    return out


def reference(name, folder, **kwargs):
    import transformers

    loaded = getattr(transformers, name).from_pretrained(folder, **kwargs)
    (loaded[0] if isinstance(loaded, tuple) else loaded).eval()
    return loaded


def inputs():
    return random_inputs()


def snapshot(folder) -> dict:
    """name -> (sha256, size, mtime) of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            stat = os.stat(path)
            out[os.path.relpath(path, folder)] = (digest, stat.st_size, stat.st_mtime_ns)
    return out


# ---------------------------------------------------------------------- file formats
@torch.no_grad()
def test_safetensors_and_pytorch_bin_load_the_same(folders, tmp_path, monkeypatch):
    theirs = reference("BertForMaskedLM", folders["BertForMaskedLM"])
    shutil.copy(folders["BertForMaskedLM"] / "config.json", tmp_path)
    torch.save(theirs.state_dict(), tmp_path / "pytorch_model.bin")  # the classic layout: a pickled state dict
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    from_bin = bert.BertForMaskedLM.from_pretrained(tmp_path)
    assert calls and all(k.get("weights_only") is True for k in calls)  # pickles are read as data only
    from_safe = bert.BertForMaskedLM.from_pretrained(folders["BertForMaskedLM"])
    expected = theirs(**inputs())
    assert_outputs_close(from_bin(**inputs()), expected)
    assert_outputs_close(from_safe(**inputs()), expected)


@torch.no_grad()
def test_sharded_checkpoints_both_ways(folders, tmp_path):
    ours = bert.BertForMaskedLM.from_pretrained(folders["BertForMaskedLM"])
    ours.save_pretrained(tmp_path / "ours", max_shard_size="20KB")
    index = json.loads((tmp_path / "ours" / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and all((tmp_path / "ours" / s).exists() for s in shards)
    assert not (tmp_path / "ours" / "model.safetensors").exists()
    theirs, info = reference("BertForMaskedLM", tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    expected = ours(**inputs())
    assert_outputs_close(theirs(**inputs()), expected)
    assert_outputs_close(bert.BertForMaskedLM.from_pretrained(tmp_path / "ours")(**inputs()), expected, atol=0, rtol=0)
    theirs.save_pretrained(tmp_path / "theirs", max_shard_size="20KB")
    assert (tmp_path / "theirs" / "model.safetensors.index.json").exists()
    assert_outputs_close(leanformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "theirs")(**inputs()), expected)
    ours.save_pretrained(tmp_path / "ours")  # one file again: the stale shards and index go away
    assert sorted(os.listdir(tmp_path / "ours")) == ["config.json", "model.safetensors"]


# ---------------------------------------------------------------------- dtype and device
@pytest.mark.parametrize("saved, requested, expected", [
    (torch.float32, None, torch.float32), (torch.bfloat16, None, torch.bfloat16),
    (torch.bfloat16, "auto", torch.bfloat16), (torch.float32, torch.bfloat16, torch.bfloat16),
    (torch.float32, "float16", torch.float16), (torch.bfloat16, torch.float32, torch.float32)])
def test_dtype(folders, tmp_path, saved, requested, expected):
    folder = folders["BertModel"]
    if saved != torch.float32:
        reference("BertModel", folder).to(saved).save_pretrained(tmp_path)
        folder = tmp_path
    kwargs = {} if requested is None else {"dtype": requested}
    ours = bert.BertModel.from_pretrained(folder, **kwargs)
    assert ours.dtype == expected == reference("BertModel", folder, **kwargs).dtype
    assert {p.dtype for p in ours.parameters()} == {expected}
    legacy_kw = bert.BertModel.from_pretrained(folder, torch_dtype=requested) if requested is not None else ours
    assert legacy_kw.dtype == expected
    with torch.no_grad():
        out = ours(**inputs())
    assert out.last_hidden_state.dtype == expected and bool(out.last_hidden_state.isfinite().all())


@pytest.mark.parametrize("device_map", ["cpu", "auto", {"": "cpu"}])
def test_device_map(folders, device_map):
    ours = bert.BertModel.from_pretrained(folders["BertModel"], device_map=device_map)
    want = "cuda" if device_map == "auto" and torch.cuda.is_available() else "cpu"
    assert {p.device.type for p in ours.parameters()} == {want}


# ---------------------------------------------------------------------- partial checkpoints
def test_base_checkpoint_into_head_model(folders, monkeypatch):
    """Missing head weights are reported (like the reference) and initialised; nothing loaded is re-initialised,
    and the model is built on the meta device."""
    devices = []
    real_post_init = leanformers.PreTrainedModel.post_init
    monkeypatch.setattr(leanformers.PreTrainedModel, "post_init",
                        lambda self: devices.append(next(self.parameters()).device.type) or real_post_init(self))
    folder = folders["BertModel"]
    ours, info = bert.BertForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    assert devices and set(devices) == {"meta"}
    _, expected = reference("BertForSequenceClassification", folder, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(expected["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    on_disk = load_file(os.path.join(folder, "model.safetensors"))
    state = ours.state_dict()
    for key, tensor in on_disk.items():
        assert torch.equal(state["bert." + key], tensor), key  # bit-identical, never re-initialised
    assert not any(p.is_meta for p in ours.parameters())
    assert torch.equal(ours.classifier.bias, torch.zeros(2)) and 0.005 < float(ours.classifier.weight.detach().std()) < 0.05


def test_missing_bias_beside_a_loaded_weight_keeps_the_weight(folders, tmp_path):
    """A module whose weight is in the checkpoint but whose bias is not: the weight stays as loaded."""
    from safetensors.torch import save_file

    shutil.copy(folders["BertModel"] / "config.json", tmp_path)
    state = load_file(folders["BertModel"] / "model.safetensors")
    state.pop("pooler.dense.bias")
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    ours, info = bert.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == ["pooler.dense.bias"]
    assert torch.equal(ours.pooler.dense.weight, state["pooler.dense.weight"])
    assert torch.equal(ours.pooler.dense.bias, torch.zeros(TINY["hidden_size"]))


def test_head_checkpoint_into_base_model_and_masked_lm_from_base(folders):
    ours, info = bert.BertModel.from_pretrained(folders["BertForMaskedLM"], output_loading_info=True)
    _, expected = reference("BertModel", folders["BertForMaskedLM"], output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == sorted(expected["unexpected_keys"])
    assert "cls.predictions.transform.dense.weight" in info["unexpected_keys"]
    assert sorted(info["missing_keys"]) == sorted(expected["missing_keys"]) == ["pooler.dense.bias",
                                                                                 "pooler.dense.weight"]
    mlm, info = bert.BertForMaskedLM.from_pretrained(folders["BertModel"], output_loading_info=True)
    _, expected = reference("BertForMaskedLM", folders["BertModel"], output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(expected["missing_keys"])
    assert sorted(info["unexpected_keys"]) == sorted(expected["unexpected_keys"])
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight


def test_ignore_mismatched_sizes(folders):
    folder = folders["BertForSequenceClassification"]
    with pytest.raises(CheckpointError, match=r"'classifier\.(weight|bias)'.*ignore_mismatched_sizes=True"):
        bert.BertForSequenceClassification.from_pretrained(folder, num_labels=5)
    ours, info = bert.BertForSequenceClassification.from_pretrained(folder, num_labels=5, output_loading_info=True,
                                                                   ignore_mismatched_sizes=True)
    _, expected = reference("BertForSequenceClassification", folder, num_labels=5, output_loading_info=True,
                            ignore_mismatched_sizes=True)
    assert sorted(k for k, *_ in info["mismatched_keys"]) == sorted(k for k, *_ in expected["mismatched_keys"])
    assert ("classifier.weight", (3, TINY["hidden_size"]), (5, TINY["hidden_size"])) in info["mismatched_keys"]
    assert ours.classifier.weight.shape == (5, TINY["hidden_size"]) and ours.config.num_labels == 5
    with torch.no_grad():
        assert ours(**inputs()).logits.shape == (2, 5)


# ---------------------------------------------------------------------- tying, embeddings, parameter counts
@torch.no_grad()
def test_tied_embeddings_after_load_and_resize(folders, tmp_path):
    ours = bert.BertForMaskedLM.from_pretrained(folders["BertForMaskedLM"])
    words, head = ours.get_input_embeddings(), ours.cls.predictions
    assert words is ours.bert.embeddings.word_embeddings and ours.get_output_embeddings() is head.decoder
    assert head.decoder.weight.data_ptr() == words.weight.data_ptr() and head.decoder.bias is head.bias
    batch = inputs()
    before = ours(**batch).logits
    ours.resize_token_embeddings(120)
    words = ours.get_input_embeddings()
    assert words.weight.shape == (120, TINY["hidden_size"]) and ours.config.vocab_size == 120
    assert head.decoder.weight.data_ptr() == words.weight.data_ptr() and head.decoder.bias is head.bias
    after = ours(**batch).logits
    assert after.shape[-1] == 120
    torch.testing.assert_close(after[..., :TINY["vocab_size"]], before)  # old tokens score as before
    ours.save_pretrained(tmp_path)
    theirs, info = reference("BertForMaskedLM", tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert_outputs_close(theirs(**batch), ours(**batch))


@pytest.mark.parametrize("name", ["BertModel", "BertForMaskedLM", "BertForSequenceClassification"])
def test_num_parameters_match_reference(folders, name):
    ours, theirs = getattr(bert, name).from_pretrained(folders[name]), reference(name, folders[name])
    for kwargs in ({}, {"exclude_embeddings": True}, {"only_trainable": True}):
        assert ours.num_parameters(**kwargs) == theirs.num_parameters(**kwargs), kwargs


def test_config_overrides_through_from_pretrained(folders):
    folder = folders["BertModel"]
    ours = leanformers.AutoModel.from_pretrained(folder, output_hidden_states=True)
    assert ours.config.output_hidden_states
    with torch.no_grad():
        assert len(ours(**inputs()).hidden_states) == TINY["num_hidden_layers"] + 1
    five = bert.BertForSequenceClassification.from_pretrained(folder, num_labels=5)
    assert five.classifier.out_features == 5 and five.config.num_labels == 5
    labels = {0: "negative", 1: "positive"}
    named = leanformers.AutoModelForSequenceClassification.from_pretrained(folder, id2label=labels)
    theirs = reference("BertForSequenceClassification", folder, id2label=labels)
    assert named.config.id2label == theirs.config.id2label == labels
    assert named.config.label2id == theirs.config.label2id and named.config.num_labels == 2
    with pytest.raises(TypeError, match="not_a_setting"):
        bert.BertModel.from_pretrained(folder, not_a_setting=1)


# ---------------------------------------------------------------------- bad input
def _corrupt(case, folder):
    if case == "config_not_json":
        (folder / "config.json").write_text("{ this is not json")
    elif case == "unknown_model_type":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "not-a-model"}))
    elif case == "truncated_weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "wrong_shape":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 40}))
    elif case == "no_weights":
        os.remove(folder / "model.safetensors")


@pytest.mark.parametrize("case, error, message", [
    ("config_not_json", ConfigError, r"config\.json is not valid JSON"),
    ("unknown_model_type", UnknownModelTypeError, r"'not-a-model'.*supports: .*bert.*distilbert"),
    ("truncated_weights", CheckpointError, r"model\.safetensors.*damaged or truncated.*download it again"),
    ("wrong_shape", CheckpointError,
     r"'bert\.encoder\.layer\.0\.intermediate\.dense\.(weight|bias)' has shape \(37(, 32)?,?\) in the checkpoint "
     r"but \(40(, 32)?,?\).*fix the config"),
    ("no_weights", ResourceNotFoundError, r"has no weights: none of model\.safetensors"),
])
def test_bad_checkpoints_raise_and_leave_the_folder_untouched(folders, tmp_path, case, error, message):
    folder = tmp_path / "model"
    shutil.copytree(folders["BertForSequenceClassification"], folder)
    _corrupt(case, folder)
    before = snapshot(folder)
    with pytest.raises(error, match=message):
        leanformers.AutoModelForSequenceClassification.from_pretrained(folder)
    assert snapshot(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["model"]  # nothing written beside it either


def test_missing_folder(tmp_path):
    with pytest.raises(ResourceNotFoundError, match="does-not-exist"):
        bert.BertModel.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(ResourceNotFoundError, match="does-not-exist"):
        leanformers.AutoModel.from_pretrained(str(tmp_path / "does-not-exist"))
    assert os.listdir(tmp_path) == []
