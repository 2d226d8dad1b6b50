"""from_pretrained / save_pretrained: folders written by the reference load here, folders written here load in the
reference, legacy vocabulary files, config options, chat templates, hub cache layout and AutoTokenizer."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import transformers

import leanformers
import leanformers.tokenization as lt
from leanformers.tokenization import tokenizer_class, tokenizer_class_name

from .conftest import TEXTS, assert_same_output

PAIR = (TEXTS[0], TEXTS[3])
TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def _same_behaviour(ours, ref):
    """Same outputs on singles, pairs and padded batches, same decode, same special tokens."""
    options = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    for text in TEXTS:
        assert_same_output(ours(text, **options), ref(text, **options))
        ids = ref(text)["input_ids"]
        assert ours.decode(ids) == ref.decode(ids)
    assert_same_output(ours(*PAIR, truncation=True, max_length=20), ref(*PAIR, truncation=True, max_length=20))
    if ref.pad_token is not None:
        assert_same_output(ours(TEXTS, padding=True), ref(TEXTS, padding=True))
    assert ours.all_special_tokens == ref.all_special_tokens
    assert ours.special_tokens_map == ref.special_tokens_map
    assert len(ours) == len(ref)
    assert (ours.model_max_length, ours.padding_side, ours.truncation_side, ours.chat_template) == \
        (ref.model_max_length, ref.padding_side, ref.truncation_side, ref.chat_template)


def _customised(tokenizer):
    tokenizer.add_tokens(["newword", "<thing>"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<extra1>", "<extra2>"]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = 64
    tokenizer.padding_side = "left"
    tokenizer.chat_template = TEMPLATE
    return tokenizer


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_reference_save_loads_here(fresh, tmp_path, kind):
    ref, _ = fresh(kind)
    _customised(ref).save_pretrained(str(tmp_path))
    reloaded = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = leanformers.AutoTokenizer.from_pretrained(tmp_path)
    assert type(ours).__name__ == type(reloaded).__name__
    _same_behaviour(ours, reloaded)


@pytest.mark.parametrize("kind", ["minilm", "gpt2", "roberta"])
def test_our_save_loads_in_reference(fresh, tmp_path, kind):
    ref, ours = fresh(kind)
    files = _customised(ours).save_pretrained(tmp_path)
    theirs = _customised(fresh(kind)[0]).save_pretrained(str(tmp_path / "reference"))
    # the same files, returned in the same order, as the reference writes
    assert [os.path.basename(f) for f in files] == [os.path.basename(f) for f in theirs] == [
        "tokenizer_config.json", "chat_template.jinja", "tokenizer.json"]
    assert sorted(str(p) for p in tmp_path.iterdir() if p.is_file()) == sorted(files)
    reloaded_ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(reloaded_ref).__name__ == type(ref).__name__
    _same_behaviour(ours, reloaded_ref)
    _same_behaviour(leanformers.AutoTokenizer.from_pretrained(tmp_path), reloaded_ref)


def test_saved_config_keeps_options_and_drops_paths(tmp_path, minilm_path):
    ours = lt.BertTokenizerFast.from_pretrained(minilm_path, do_lower_case=True)
    ours.save_pretrained(tmp_path, filename_prefix="pre")
    config = json.loads((tmp_path / "pre-tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer"
    assert config["do_lower_case"] is True and config["model_max_length"] == 512
    assert not {"vocab_file", "tokenizer_file", "name_or_path"} & set(config)
    assert config["added_tokens_decoder"]["101"]["content"] == "[CLS]"
    assert {key: config[key] for key in ours.special_tokens_map} == ours.special_tokens_map
    assert not (tmp_path / "pre-special_tokens_map.json").exists()


def test_legacy_wordpiece_folder_matches_reference(tmp_path, minilm_path):
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, tmp_path / name)
    (tmp_path / "added_tokens.json").write_text(json.dumps({"newword": 30522, "<special>": 30523}))
    specials = json.loads((tmp_path / "special_tokens_map.json").read_text())
    specials["additional_special_tokens"] = ["<special>"]
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(specials))
    ref = transformers.BertTokenizer.from_pretrained(str(tmp_path))
    ours = lt.BertTokenizerFast.from_pretrained(tmp_path)
    _same_behaviour(ours, ref)
    text = "a newword and a <special> token"
    assert_same_output(ours(text), ref(text))
    assert ours.extra_special_tokens == ref.extra_special_tokens


def test_legacy_vocab_file_path_and_positional_vocab(minilm_path):
    ref = transformers.BertTokenizer.from_pretrained(str(minilm_path / "vocab.txt"))
    _same_behaviour(lt.BertTokenizerFast.from_pretrained(minilm_path / "vocab.txt"), ref)
    _same_behaviour(lt.BertTokenizerFast(str(minilm_path / "vocab.txt")), ref)


@pytest.mark.parametrize("cls_name", ["GPT2Tokenizer", "RobertaTokenizer"])
def test_legacy_byte_level_folder_matches_reference(gpt2_dirs, cls_name):
    legacy = gpt2_dirs[0]
    ref = getattr(transformers, cls_name).from_pretrained(str(legacy))
    ours = getattr(lt, cls_name).from_pretrained(legacy)
    _same_behaviour(ours, ref)


def test_tokenizer_json_path_and_tokenizer_object(minilm_path):
    path = minilm_path / "tokenizer.json"
    ref = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    _same_behaviour(lt.PreTrainedTokenizerFast.from_pretrained(path), ref)
    _same_behaviour(lt.PreTrainedTokenizerFast(tokenizer_file=str(path)), ref)
    ours = lt.PreTrainedTokenizerFast(tokenizer_object=ref.backend_tokenizer)
    assert ours.backend_tokenizer is not ref.backend_tokenizer
    _same_behaviour(ours, transformers.PreTrainedTokenizerFast(tokenizer_object=ref.backend_tokenizer))


def test_engine_given_directly_is_used_as_it_is(minilm_path):
    from tokenizers import Tokenizer, normalizers

    engine = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    engine.normalizer = normalizers.BertNormalizer(lowercase=False)
    for options in ({"tokenizer_object": engine}, {"tokenizer_file": str(minilm_path / "tokenizer.json"),
                                                   "do_lower_case": False}):
        _same_behaviour(lt.BertTokenizerFast(**options), transformers.BertTokenizer(**options))


@pytest.mark.parametrize("options", [{"do_lower_case": False}, {"model_max_length": 16, "truncation_side": "left"},
                                     {"padding_side": "left", "pad_token": "[MASK]"}, {"strip_accents": False}])
def test_keyword_overrides_match_reference(minilm_path, options):
    ref = transformers.AutoTokenizer.from_pretrained(str(minilm_path), **options)
    ours = leanformers.AutoTokenizer.from_pretrained(minilm_path, **options)
    _same_behaviour(ours, ref)
    assert_same_output(ours(TEXTS, padding=True, truncation=True), ref(TEXTS, padding=True, truncation=True))


def test_config_options_in_folder_match_reference(tmp_path, minilm_path):
    shutil.copy(minilm_path / "tokenizer.json", tmp_path / "tokenizer.json")
    config = json.loads((minilm_path / "tokenizer_config.json").read_text())
    config.update(do_lower_case=False, tokenize_chinese_chars=False, model_max_length=32, padding_side="left",
                  clean_up_tokenization_spaces=True, chat_template=TEMPLATE)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    ours = leanformers.AutoTokenizer.from_pretrained(tmp_path)
    _same_behaviour(ours, ref)
    assert ours.chat_template == TEMPLATE and ours.clean_up_tokenization_spaces is True


def test_roberta_add_prefix_space_for_split_words(roberta_dirs):
    words = [["Hello", "world", "café"], ["x", "y"]]
    ref = transformers.RobertaTokenizer.from_pretrained(str(roberta_dirs[1]), add_prefix_space=True)
    ours = lt.RobertaTokenizerFast.from_pretrained(roberta_dirs[1], add_prefix_space=True)
    options = {"is_split_into_words": True, "padding": True, "return_offsets_mapping": True}
    assert_same_output(ours(words, **options), ref(words, **options))


def test_subfolder_and_hub_cache_layout(tmp_path, minilm_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--org--tiny-bert"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / "tok"
    snapshot.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, snapshot / name)
    ref = transformers.AutoTokenizer.from_pretrained(str(minilm_path))
    ours = lt.BertTokenizerFast.from_pretrained("org/tiny-bert", subfolder="tok", cache_dir=tmp_path / "cache",
                                                local_files_only=True, revision="main")
    _same_behaviour(ours, ref)
    assert tokenizer_class_name("org/tiny-bert", subfolder="tok", cache_dir=tmp_path / "cache",
                                local_files_only=True, padding=True) == "BertTokenizerFast"
    _same_behaviour(lt.BertTokenizerFast.from_pretrained(snapshot.parent, subfolder="tok"), ref)


def test_autotokenizer_end_to_end_on_minilm(minilm_path):
    ours = leanformers.AutoTokenizer.from_pretrained(minilm_path)
    ref = transformers.AutoTokenizer.from_pretrained(str(minilm_path))
    assert type(ours) is lt.BertTokenizerFast and isinstance(ours, lt.PreTrainedTokenizerFast)
    _same_behaviour(ours, ref)
    sentences = ["This is an example sentence", "Each sentence is converted"]
    assert_same_output(ours(sentences, padding=True, truncation=True, return_tensors="pt"),
                       ref(sentences, padding=True, truncation=True, return_tensors="pt"))


def test_class_lookup_functions(tmp_path, minilm_path):
    assert tokenizer_class_name(minilm_path) == "BertTokenizerFast"
    assert tokenizer_class_name(minilm_path / "tokenizer.json") is None
    assert tokenizer_class_name(tmp_path) is None
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MPNetTokenizer"}))
    assert tokenizer_class_name(tmp_path) == "PreTrainedTokenizerFast"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast"}))
    assert tokenizer_class_name(tmp_path) == "XLMRobertaTokenizerFast"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 3}))
    assert tokenizer_class_name(tmp_path) is None
    for name in ("BertTokenizer", "BertTokenizerFast"):
        assert tokenizer_class(name) is lt.BertTokenizerFast is lt.BertTokenizer
    for name in ("PreTrainedTokenizerFast", "TokenizersBackend", "PreTrainedTokenizer"):
        assert tokenizer_class(name) is lt.PreTrainedTokenizerFast
    assert tokenizer_class("ElectraTokenizerFast") is lt.BertTokenizerFast
    assert tokenizer_class("LlamaTokenizer") is lt.LlamaTokenizerFast


def test_llama_class_with_byte_level_file_is_generic(tmp_path, gpt2_dirs):
    shutil.copy(gpt2_dirs[1] / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    assert tokenizer_class_name(tmp_path) == "PreTrainedTokenizerFast"


def test_named_chat_templates_round_trip(fresh, tmp_path):
    ref, ours = fresh("minilm")
    templates = {"default": TEMPLATE, "tool_use": "{{ messages[0]['content'] }}"}
    ref.chat_template = dict(templates)
    ref.save_pretrained(str(tmp_path / "ref"))
    assert lt.BertTokenizerFast.from_pretrained(tmp_path / "ref").chat_template == templates
    ours.chat_template = dict(templates)
    ours.save_pretrained(tmp_path / "ours")
    assert (tmp_path / "ours" / "additional_chat_templates" / "tool_use.jinja").is_file()
    assert transformers.AutoTokenizer.from_pretrained(str(tmp_path / "ours")).chat_template == templates
