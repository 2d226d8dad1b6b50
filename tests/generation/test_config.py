"""GenerationConfig against the reference: fields, defaults, files, model-config conversion, validation."""

from __future__ import annotations

import json

import pytest

from leanformers.errors import ConfigError, ResourceNotFoundError
from leanformers.generation import GenerationConfig, GenerationMode

_VERSION_KEYS = {"transformers_version", "leanformers_version"}


def _without_versions(d):
    return {k: v for k, v in d.items() if k not in _VERSION_KEYS}


def test_fields_and_defaults_match_reference():
    import transformers

    theirs = transformers.GenerationConfig()
    ours = GenerationConfig()
    their_fields = {k for k in vars(theirs) if not k.startswith("_")} - _VERSION_KEYS
    our_fields = {k for k in vars(ours) if not k.startswith("_")} - _VERSION_KEYS
    assert our_fields == their_fields
    assert all(getattr(ours, k) is None for k in our_fields)
    assert GenerationConfig.default_params() == theirs._get_default_generation_params()
    assert _without_versions(ours.to_diff_dict()) == _without_versions(theirs.to_diff_dict()) == {}


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_from_model_config_matches_reference(kind):
    import transformers

    from leanformers.models import gpt2, llama_heads as llama

    kwargs = dict(bos_token_id=3, eos_token_id=[4, 5], pad_token_id=0, output_attentions=True)
    if kind == "gpt2":
        theirs_cfg, ours_cfg = transformers.GPT2Config(**kwargs), gpt2.GPT2Config(**kwargs)
    else:
        theirs_cfg, ours_cfg = transformers.LlamaConfig(**kwargs), llama.LlamaConfig(**kwargs)
    theirs = transformers.GenerationConfig.from_model_config(theirs_cfg)
    ours = GenerationConfig.from_model_config(ours_cfg)
    assert _without_versions(ours.to_diff_dict()) == _without_versions(theirs.to_diff_dict())
    assert ours.return_dict_in_generate is True  # an output flag switches the dict output on


def test_files_round_trip_both_ways(tmp_path):
    import transformers

    ours = GenerationConfig(max_new_tokens=7, do_sample=True, top_k=5, eos_token_id=[2, 3], custom_key="kept")
    ours.save_pretrained(tmp_path / "ours")
    saved = json.loads((tmp_path / "ours" / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 7 and saved["custom_key"] == "kept" and "temperature" not in saved
    theirs = transformers.GenerationConfig.from_pretrained(tmp_path / "ours")
    assert (theirs.max_new_tokens, theirs.do_sample, theirs.top_k, theirs.eos_token_id) == (7, True, 5, [2, 3])
    theirs.update(num_beams=3, length_penalty=0.5)
    theirs.save_pretrained(tmp_path / "theirs")
    back = GenerationConfig.from_pretrained(tmp_path / "theirs")
    assert _without_versions(back.to_diff_dict()) == _without_versions(theirs.to_diff_dict())
    assert back == GenerationConfig.from_pretrained(tmp_path / "theirs" / "generation_config.json")


def test_from_pretrained_kwargs_and_missing_file(tmp_path):
    import transformers

    GenerationConfig(top_k=3, do_sample=True).save_pretrained(tmp_path)
    config, unused = GenerationConfig.from_pretrained(tmp_path, top_k=9, foo=1, return_unused_kwargs=True)
    theirs, their_unused = transformers.GenerationConfig.from_pretrained(tmp_path, top_k=9, foo=1,
                                                                         return_unused_kwargs=True)
    assert (config.top_k, config.foo, unused) == (theirs.top_k, theirs.foo, their_unused) == (9, 1, {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResourceNotFoundError, match="generation_config.json"):
        GenerationConfig.from_pretrained(tmp_path / "empty")
    with pytest.raises(ResourceNotFoundError, match="does not exist"):
        GenerationConfig.from_pretrained(tmp_path / "nothing-here")


def test_update_to_json_and_equality():
    config = GenerationConfig(temperature=0.7)
    assert config.update(top_p=0.9, not_a_setting=1) == {"not_a_setting": 1}
    assert config.top_p == 0.9
    assert json.loads(config.to_json_string())["temperature"] == 0.7
    assert config == GenerationConfig(temperature=0.7, top_p=0.9)
    assert config != GenerationConfig(temperature=0.7)
    assert hash(config) == hash(GenerationConfig(temperature=0.7, top_p=0.9))


@pytest.mark.parametrize("settings, mode", [
    ({}, GenerationMode.GREEDY_SEARCH),
    ({"do_sample": True}, GenerationMode.SAMPLE),
    ({"num_beams": 3}, GenerationMode.BEAM_SEARCH),
    ({"num_beams": 3, "do_sample": True}, GenerationMode.BEAM_SAMPLE),
    ({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}, GenerationMode.GROUP_BEAM_SEARCH),
    ({"penalty_alpha": 0.6, "top_k": 4}, GenerationMode.CONTRASTIVE_SEARCH),
    ({"num_beams": 2, "force_words_ids": [[5]]}, GenerationMode.CONSTRAINED_BEAM_SEARCH),
])
def test_generation_mode_matches_reference(settings, mode):
    import transformers

    assert GenerationConfig(**settings).get_generation_mode() == mode
    assert transformers.GenerationConfig(**settings).get_generation_mode() == mode


@pytest.mark.parametrize("settings, message", [
    ({"max_new_tokens": 0}, "max_new_tokens must be greater than 0"),
    ({"max_new_tokens": -3}, "max_new_tokens must be greater than 0"),
    ({"num_beams": 5, "num_beam_groups": 2}, "divisible by num_beam_groups"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"early_stopping": "sometimes"}, "early_stopping"),
    ({"num_return_sequences": 3, "num_beams": 2}, "smaller or equal to num_beams"),
    ({"num_return_sequences": 2}, "num_return_sequences=2 needs do_sample=True"),
    ({"cache_implementation": "bogus"}, "cache_implementation"),
    ({"forced_eos_token_id": 2, "suppress_tokens": [2]}, "suppress_tokens"),
    ({"num_beams": 2, "force_words_ids": [[5]], "do_sample": True}, "does not sample"),
])
def test_invalid_settings_raise(settings, message):
    with pytest.raises(ConfigError, match=message):
        GenerationConfig(**settings)
    with pytest.raises(ValueError):  # ConfigError is a ValueError, like the reference's errors
        GenerationConfig().update(**settings)


def test_reading_settings_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, leanformers.generation as g; g.GenerationConfig(max_new_tokens=2).to_json_string(); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
