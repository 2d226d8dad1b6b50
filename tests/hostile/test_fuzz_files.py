"""Fuzzing every file leanformers reads: valid files mutated (bit flips, truncation, splices, JSON type swaps,
huge numbers, deep nesting) must load or fail with a leanformers error, quickly, writing nothing.

CI runs a small deterministic budget; `LEANFORMERS_FUZZ_EXAMPLES=10000 pytest -m fuzz tests/hostile
--hypothesis-seed=1` is the long run."""

from __future__ import annotations

import json
import shutil
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leanformers
from leanformers.generation import GenerationConfig

from . import files
from .fuzzing import budget, check_hostile, mutated_bytes, mutated_json, write_variant

pytestmark = pytest.mark.fuzz
TEXT = "Hello, world! Ünïcödé 123 <|user|> [MASK] hi"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {
        "bert": files.tiny_bert(root / "bert"),
        "sharded": files.tiny_bert(root / "sharded", max_shard_size="10KB"),
        "bin": files.tiny_bert(root / "bin", safe_serialization=False),
        "wordpiece": files.small_wordpiece(root / "wordpiece"),
        "vocab_txt": files.vocab_txt(root / "vocab_txt"),
        "gpt2": files.gpt2_bpe(root / "gpt2"),
        "spm": files.sentencepiece(root / "spm"),
        "gguf": files.tiny_gguf(root / "tiny.gguf"),
    }


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A parent folder watched for writes, and an empty hub cache watched too."""
    root = tmp_path_factory.mktemp("work")
    (root / "cache").mkdir()
    return root


def _load_model(folder):
    leanformers.AutoModelForMaskedLM.from_pretrained(folder)


def _load_tokenizer(folder, cls=None):
    tokenizer = (cls or leanformers.AutoTokenizer).from_pretrained(folder)
    ids = tokenizer(TEXT)["input_ids"]
    tokenizer.decode(ids)
    tokenizer([TEXT, "", "a b"], padding=True, truncation=True, max_length=8)


def _run(name, work, source, variant: dict, step):
    target = work / "target"
    write_variant(target, source, variant)
    check_hostile(name, lambda: step(target), work, work / "cache")


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _fuzz_file(data, work, source, name: str, step, focus: int | None = None, parsed=None):
    """Loads `source` with `name` mutated: its bytes (edits in the first `focus` bytes mostly), or, when `parsed`
    (its JSON) is given, either that JSON mutated or its bytes."""
    strategy = mutated_bytes((source / name).read_bytes(), focus=focus)
    if parsed is not None:
        strategy = mutated_json(parsed) | strategy
    _run(name, work, source, {name: data.draw(strategy)}, step)


# ---------------------------------------------------------------------------------------------- configs
@settings(max_examples=budget(150))
@given(data=st.data())
def test_config_json(sources, work, data):
    source = sources["bert"]

    def step(folder):
        leanformers.AutoConfig.from_pretrained(folder)
        _load_model(folder)

    _fuzz_file(data, work, source, "config.json", step, parsed=_json(source / "config.json"))


@settings(max_examples=budget(100))
@given(data=st.data())
def test_generation_config_json(sources, work, data):
    original = {"bos_token_id": 1, "eos_token_id": [2, 3], "max_new_tokens": 20, "do_sample": True, "top_p": 0.9,
                "temperature": 0.7, "num_beams": 1, "suppress_tokens": [5]}
    mutated = data.draw(mutated_json(original))

    def step(folder):
        GenerationConfig.from_pretrained(folder).validate()

    _run("generation_config.json", work, sources["bert"], {"generation_config.json": mutated}, step)


# ---------------------------------------------------------------------------------------------- weights
@settings(max_examples=budget(100))
@given(data=st.data())
def test_safetensors(sources, work, data):
    source = sources["bert"]
    header = 8 + struct.unpack("<Q", (source / "model.safetensors").read_bytes()[:8])[0]
    _fuzz_file(data, work, source, "model.safetensors", _load_model, focus=header)


@settings(max_examples=budget(75))
@given(data=st.data())
def test_safetensors_index(sources, work, data):
    source = sources["sharded"]
    name = "model.safetensors.index.json"
    _fuzz_file(data, work, source, name, _load_model, parsed=_json(source / name))


@settings(max_examples=budget(75))
@given(data=st.data())
def test_pytorch_model_bin(sources, work, data):
    _fuzz_file(data, work, sources["bin"], "pytorch_model.bin", _load_model)


# ---------------------------------------------------------------------------------------------- tokenizers
@settings(max_examples=budget(100))
@given(data=st.data())
def test_tokenizer_json(sources, work, data):
    source = sources["wordpiece"]
    parsed = _json(source / "tokenizer.json")
    parsed["model"]["vocab"] = dict(list(parsed["model"]["vocab"].items())[:150])  # fewer places to mutate
    _fuzz_file(data, work, source, "tokenizer.json", _load_tokenizer, focus=4000, parsed=parsed)


@pytest.mark.parametrize("name", ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"])
@settings(max_examples=budget(62))
@given(data=st.data())
def test_tokenizer_side_files(sources, work, data, name):
    source = sources["wordpiece"]
    _fuzz_file(data, work, source, name, _load_tokenizer, parsed=_json(source / name))


@settings(max_examples=budget(62))
@given(data=st.data())
def test_vocab_txt(sources, work, data):
    _fuzz_file(data, work, sources["vocab_txt"], "vocab.txt", _load_tokenizer)


@settings(max_examples=budget(62))
@given(data=st.data())
def test_vocab_json_and_merges(sources, work, data):
    source = sources["gpt2"]
    name = data.draw(st.sampled_from(["vocab.json", "merges.txt"]))
    original = (source / name).read_bytes()
    mutated = data.draw(mutated_json(_json(source / name)) if name == "vocab.json" and data.draw(st.booleans())
                        else mutated_bytes(original))
    _run(name, work, source, {name: mutated}, _load_tokenizer)


@settings(max_examples=budget(50))
@given(data=st.data())
def test_sentencepiece_model(sources, work, data):
    _fuzz_file(data, work, sources["spm"], "tokenizer.model", _load_tokenizer, focus=2000)


# ---------------------------------------------------------------------------------------------- the hub cache
@settings(max_examples=budget(75))
@given(data=st.data())
def test_cached_repo(sources, work, data):
    """A damaged file inside the hub cache, loaded by repo id (offline): the load fails or succeeds, and the cache
    is left exactly as it was."""
    cache = work / "hub-cache"
    snapshot = cache / "models--hostile--bert" / "snapshots" / ("0" * 40)
    if not snapshot.exists():
        shutil.copytree(sources["bert"], snapshot)
        shutil.copytree(sources["wordpiece"], snapshot, dirs_exist_ok=True)
        (cache / "models--hostile--bert" / "refs").mkdir()
        (cache / "models--hostile--bert" / "refs" / "main").write_text("0" * 40)
    name = data.draw(st.sampled_from(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]))
    clean = (sources["bert"] / name if (sources["bert"] / name).exists() else sources["wordpiece"] / name)
    mutated = data.draw(mutated_bytes(clean.read_bytes(), focus=2000))
    (snapshot / name).write_bytes(mutated)

    def step():
        try:
            leanformers.AutoModelForMaskedLM.from_pretrained("hostile/bert", cache_dir=cache)
        finally:
            _load_tokenizer_from_cache(cache)

    try:
        check_hostile("hub cache", step, cache)
    finally:
        (snapshot / name).write_bytes(clean.read_bytes())


def _load_tokenizer_from_cache(cache):
    tokenizer = leanformers.AutoTokenizer.from_pretrained("hostile/bert", cache_dir=cache)
    tokenizer(TEXT)


# ---------------------------------------------------------------------------------------------- GGUF
@settings(max_examples=budget(100))
@given(data=st.data())
def test_gguf(sources, work, data):
    source = sources["gguf"]
    blob = source.read_bytes()
    mutated = data.draw(mutated_bytes(blob, focus=2500))
    folder = work / "target"
    folder.mkdir(exist_ok=True)
    (folder / "model.gguf").write_bytes(mutated)

    def step():
        leanformers.AutoConfig.from_pretrained(folder, gguf_file="model.gguf")
        tokenizer = leanformers.AutoTokenizer.from_pretrained(folder, gguf_file="model.gguf")
        tokenizer(TEXT)
        leanformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf")

    check_hostile("gguf", step, work, work / "cache")
