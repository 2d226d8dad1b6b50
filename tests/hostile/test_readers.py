"""One test per hostile case of every reader: the exception class, and a message that names the file (and the key,
offset or argument) and says what to do."""

from __future__ import annotations

import json
import shutil
import struct
import tracemalloc

import pytest
from conftest import SPLADE, fixture_path

import leanformers
from leanformers.errors import (
    CheckpointError,
    ConfigError,
    LeanformersError,
    ResourceNotFoundError,
    TokenizerError,
    UnsafePathError,
)
from leanformers.generation import GenerationConfig
from leanformers.gguf import read_gguf

from . import files


# ---------------------------------------------------------------------------------------------- the error family
def test_every_error_is_a_leanformers_error_and_keeps_its_builtin_base():
    from leanformers import errors

    for name in ("ConfigError", "UnknownModelTypeError", "CheckpointError", "TokenizerError", "ChatTemplateError"):
        assert issubclass(getattr(errors, name), (LeanformersError,)) and issubclass(getattr(errors, name), ValueError)
    for name in ("ResourceNotFoundError", "UnsafePathError", "MissingCheckpointError"):
        assert issubclass(getattr(errors, name), LeanformersError) and issubclass(getattr(errors, name), OSError)


# ---------------------------------------------------------------------------------------------- config.json
@pytest.fixture
def bert(tmp_path):
    return files.tiny_bert(tmp_path / "bert")


def _edit_json(path, **changes):
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("changes, words", [
    ({"__class__": "os.system"}, "'__class__'"),
    ({"to_dict": 1}, "'to_dict'"),
    ({"hidden_size": "16"}, "hidden_size='16'"),
    ({"num_hidden_layers": 10**9}, "num_hidden_layers=1000000000"),
    ({"vocab_size": 2**63}, "vocab_size=9223372036854775808"),
    ({"model_type": ["bert"]}, "model_type=['bert']"),
    ({"id2label": ["a", "b"]}, "id2label"),
])
def test_config_values_no_model_can_have(bert, changes, words):
    _edit_json(bert / "config.json", **changes)
    for load in (leanformers.AutoConfig.from_pretrained, leanformers.AutoModelForMaskedLM.from_pretrained):
        with pytest.raises(ConfigError) as caught:
            load(bert)
        assert words in str(caught.value)
        assert "config" in str(caught.value)


def test_config_that_cannot_build_the_model_names_the_folder(bert):
    _edit_json(bert / "config.json", num_attention_heads=3)  # 16 is not a multiple of 3
    with pytest.raises(ConfigError, match=f"{bert}.*config.json"):
        leanformers.AutoModelForMaskedLM.from_pretrained(bert)
    _edit_json(bert / "config.json", num_attention_heads=2, pad_token_id=64)  # torch asserts padding_idx < 64
    with pytest.raises(ConfigError, match=f"{bert}.*config.json.*Padding_idx must be within num_embeddings"):
        leanformers.AutoModelForMaskedLM.from_pretrained(bert)


def test_deeply_nested_config(bert):
    (bert / "config.json").write_text('{"model_type": "bert", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="config.json.*nests"):
        leanformers.AutoConfig.from_pretrained(bert)


def test_generation_config_of_the_wrong_type(bert):
    (bert / "generation_config.json").write_text(json.dumps({"max_new_tokens": "20", "top_p": 0.9}))
    with pytest.raises(ConfigError, match="generation_config.json.*max_new_tokens='20'"):
        GenerationConfig.from_pretrained(bert)
    (bert / "generation_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="generation_config.json is not valid JSON"):
        GenerationConfig.from_pretrained(bert)


# ---------------------------------------------------------------------------------------------- weights
def test_safetensors_header_lies(bert):
    weights = bert / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(struct.pack("<Q", 2**62) + data[8:])  # a header longer than the file
    with pytest.raises(CheckpointError, match="model.safetensors.*damaged or truncated"):
        leanformers.AutoModelForMaskedLM.from_pretrained(bert)


@pytest.mark.parametrize("weight_map, error, words", [
    ({"a": 5}, CheckpointError, "5, not a file name"),
    ({"a": "../outside.safetensors"}, UnsafePathError, "stay inside its folder"),
    ({"a": "/etc/passwd"}, UnsafePathError, "stay inside its folder"),
    ([1, 2], CheckpointError, "no 'weight_map'"),
    ({}, CheckpointError, "lists no weights"),
])
def test_index_files(tmp_path, weight_map, error, words):
    folder = files.tiny_bert(tmp_path / "sharded", max_shard_size="10KB")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(error, match=words):
        leanformers.AutoModelForMaskedLM.from_pretrained(folder)


def test_truncated_pytorch_bin(tmp_path):
    folder = files.tiny_bert(tmp_path / "bin", safe_serialization=False)
    weights = folder / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="pytorch_model.bin.*delete it and download it again"):
        leanformers.AutoModelForMaskedLM.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------- tokenizer files
@pytest.fixture
def wordpiece(tmp_path):
    return files.small_wordpiece(tmp_path / "tok")


@pytest.mark.parametrize("key, value", [("model_max_length", "512"), ("pad_token", 5), ("chat_template", 3),
                                        ("added_tokens_decoder", ["x"])])
def test_tokenizer_config_value_of_the_wrong_type(wordpiece, key, value):
    _edit_json(wordpiece / "tokenizer_config.json", **{key: value})
    with pytest.raises(TokenizerError, match=f"tokenizer_config.json sets {key}"):
        leanformers.AutoTokenizer.from_pretrained(wordpiece)


def test_unk_token_missing_from_the_vocabulary(wordpiece):
    """An unk_token the vocabulary lacks (a damaged special_tokens_map.json): unknown tokens get no id (None),
    rather than a lookup of the unk token's own id without end."""
    tokenizer = leanformers.AutoTokenizer.from_pretrained(wordpiece)
    tokenizer._special_tokens_map["unk_token"] = "[NOT-THERE]"
    assert tokenizer.unk_token_id is None and tokenizer.convert_tokens_to_ids("[ALSO-NOT-THERE]") is None


def test_added_tokens_json_with_a_bad_id(wordpiece):
    (wordpiece / "added_tokens.json").write_text(json.dumps({"[NEW]": None}))
    with pytest.raises(TokenizerError, match="added_tokens.json gives the token '\\[NEW\\]' the id"):
        leanformers.AutoTokenizer.from_pretrained(wordpiece)


def test_vocab_txt_that_is_not_utf8(tmp_path):
    folder = files.vocab_txt(tmp_path / "vocab")
    (folder / "vocab.txt").write_bytes(b"\xff\xfe[PAD]\n" + (folder / "vocab.txt").read_bytes())
    with pytest.raises(TokenizerError) as caught:
        leanformers.AutoTokenizer.from_pretrained(folder)
    assert str(folder) in str(caught.value) and "vocab.txt" in str(caught.value)


def test_damaged_sentencepiece_model(tmp_path):
    folder = files.sentencepiece(tmp_path / "spm")
    (folder / "tokenizer.model").write_bytes(b"\x0a\xff\xff\xff\xff\x0f" + b"not a model" * 10)
    with pytest.raises(TokenizerError, match="tokenizer.model"):
        leanformers.AutoTokenizer.from_pretrained(folder)


def test_merges_that_do_not_parse(tmp_path):
    folder = files.gpt2_bpe(tmp_path / "gpt2")
    (folder / "merges.txt").write_text("#version: 0.2\nonlyone\n")
    with pytest.raises(TokenizerError, match="merges.txt"):
        leanformers.AutoTokenizer.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------- GGUF
def _gguf(*, kv=(), tensors=(), kv_count=None, tensor_count=None, tail=b"") -> bytes:
    """GGUF bytes from raw parts: kv = [(key, type, payload bytes)], tensors = [(name, dims, type, offset)]."""
    def string(text: bytes):
        return struct.pack("<Q", len(text)) + text

    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors) if tensor_count is None else tensor_count,
                                len(kv) if kv_count is None else kv_count)
    for key, kind, payload in kv:
        out += string(key) + struct.pack("<I", kind) + payload
    for name, dims, kind, offset in tensors:
        out += string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", kind, offset)
    return out + tail


_ARCH = (b"general.architecture", 8, struct.pack("<Q", 5) + b"llama")


@pytest.mark.parametrize("blob, words", [
    (_gguf(kv=[_ARCH], kv_count=2**40), "claims 1099511627776 metadata entries"),
    (_gguf(kv=[_ARCH], tensor_count=2**62), "claims 4611686018427387904 tensors"),
    (_gguf(kv=[(b"big", 9, struct.pack("<IQ", 4, 2**60))]), "claims 1152921504606846976 array values"),
    (_gguf(kv=[(b"big", 9, struct.pack("<IQ", 8, 2**50))]), "array values"),
    (_gguf(kv=[(b"s", 8, struct.pack("<Q", 2**63))]), "string bytes"),
    (_gguf(kv=[(b"s", 8, struct.pack("<Q", 3) + b"\xff\xfe\xfd")]), "not UTF-8"),
    (_gguf(kv=[(b"\xc3\x28", 4, struct.pack("<I", 1))]), "not UTF-8"),
    (_gguf(kv=[(b"t", 77, b"")]), "unknown metadata value type 77"),
    (_gguf(kv=[(b"a", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 9, 1) * 20)]), "nested more than"),
    (_gguf(kv=[_ARCH], tensors=[(b"w", (4,) * 9, 0, 0)]), "claims 9 dimensions"),
    (_gguf(kv=[_ARCH], tensors=[(b"w", (2**40, 2**40), 0, 0)], tail=b"\0" * 64), "tensor 'w' ends at byte"),
    (_gguf(kv=[_ARCH], tensors=[(b"w", (32,), 0, 2**63)], tail=b"\0" * 64), "truncated"),
    (_gguf(kv=[_ARCH], tensors=[(b"w", (32,), 1234, 0)], tail=b"\0" * 64), "ggml type 1234"),
    (_gguf(kv=[(b"general.alignment", 4, struct.pack("<I", 0))]), "general.alignment=0"),
    (b"GGUF" + struct.pack("<I", 99) + b"\0" * 16, "GGUF version 99"),
    (b"PK\x03\x04" + b"\0" * 40, "is not a GGUF file"),
    (b"GGUF\x03\x00", "damaged or truncated"),
])
def test_gguf_header_lies(tmp_path, blob, words):
    path = tmp_path / "model.gguf"
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as caught:
            read_gguf(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert words in str(caught.value) and str(path) in str(caught.value)
    assert peak < 5_000_000, f"reading a lying header allocated {peak} bytes"


def test_gguf_metadata_of_the_wrong_type(tmp_path):
    path = files.tiny_gguf(tmp_path / "model.gguf")
    blob = path.read_bytes()
    # llama.block_count becomes a float32 (type 6) of the same four bytes: a config value of the wrong type
    at = blob.index(b"llama.block_count") + len(b"llama.block_count")
    path.write_bytes(blob[:at] + struct.pack("<I", 6) + blob[at + 4:])
    with pytest.raises(ConfigError) as caught:
        leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="model.gguf")
    assert "num_hidden_layers" in str(caught.value) or str(path) in str(caught.value)


def test_gguf_tokens_of_the_wrong_type(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "tok.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", [1, 2, 3])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(TokenizerError, match=f"{path}"):
        leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="tok.gguf")


# ---------------------------------------------------------------------------------------------- resolution
def test_missing_folder_and_file_are_resource_errors(tmp_path):
    with pytest.raises(ResourceNotFoundError, match="No folder"):
        leanformers.AutoConfig.from_pretrained(str(tmp_path / "nowhere"))
    shutil.copytree(fixture_path(*SPLADE), tmp_path / "model")
    (tmp_path / "model" / "config.json").unlink()
    with pytest.raises(ResourceNotFoundError, match="has no file config.json"):
        leanformers.AutoConfig.from_pretrained(tmp_path / "model")
