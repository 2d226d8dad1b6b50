"""Damaged or hostile checkpoint files and text get leanformers' errors that name the file (or the argument) and
say what to do; nothing in a checkpoint runs."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

import leanformers
from leanformers.errors import CheckpointError, ConfigError, TokenizerError


@pytest.fixture
def model_copy(splade_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(splade_dir, folder)
    return folder


class _RunsACommand:
    """Unpickling this would call os.system: the marker file would appear."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickled_callable_is_refused_without_suggesting_weights_only_false(model_copy, tmp_path):
    marker = tmp_path / "ran"
    (model_copy / "model.safetensors").unlink()
    torch.save({"bert.embeddings.word_embeddings.weight": _RunsACommand(marker)}, model_copy / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as caught:
        leanformers.AutoModelForMaskedLM.from_pretrained(model_copy)
    message = str(caught.value)
    assert str(model_copy / "pytorch_model.bin") in message and "Python objects" in message
    assert "system" in message and "safetensors" in message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message
    assert not marker.exists()


def test_truncated_safetensors_names_the_file(model_copy):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*damaged or truncated"):
        leanformers.AutoModelForMaskedLM.from_pretrained(model_copy)


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
def test_damaged_tokenizer_files_name_the_file(model_copy, name):
    path = model_copy / name
    text = path.read_text(encoding="utf-8") if path.exists() else '{"unk_token": "[UNK]", "pad_token": "[PAD]"}'
    path.write_text(text[:30], encoding="utf-8")
    with pytest.raises(TokenizerError) as caught:
        leanformers.AutoTokenizer.from_pretrained(model_copy)
    assert name in str(caught.value) and "again" in str(caught.value)


def test_tokenizer_file_that_is_json_but_not_a_tokenizer(model_copy):
    (model_copy / "tokenizer.json").write_text('{"model": 5}', encoding="utf-8")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        leanformers.AutoTokenizer.from_pretrained(model_copy)


@pytest.mark.parametrize("text, where", [("\ud800", "Text 0.*U\\+D800 at character 0"),
                                         (["fine", "a\udfffb"], "Text 1.*U\\+DFFF at character 1"),
                                         ([("fine", "pair\udbff")], "Text 0.*U\\+DBFF")])
def test_lone_surrogates_are_named(splade_dir, text, where):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(splade_dir)
    with pytest.raises(TokenizerError, match=where) as caught:
        tokenizer(text)
    assert "truncation" not in str(caught.value)


def test_head_width_no_model_has_is_refused(tmp_path):
    """Tables such as rotary frequencies are built at the head width when the model is built, so a hostile
    head_dim (from config.json or a GGUF's rope.dimension_count) must stop at the config, not allocate gigabytes
    (the long fuzz run found a GGUF whose mutated rope.dimension_count took 20 s and 2 GB to refuse)."""
    config = leanformers.LlamaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    config.save_pretrained(tmp_path)
    settings = json.loads((tmp_path / "config.json").read_text())
    settings["head_dim"] = 1073741840
    (tmp_path / "config.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="head_dim=1073741840.*at most 65536"):
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path)
