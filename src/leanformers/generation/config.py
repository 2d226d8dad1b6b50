"""GenerationConfig: the settings of `generate()`, read from and written to `generation_config.json`.

Field names follow Transformers. Every field defaults to None ("unset"); `generate()` fills what is still unset
from the model's own generation config and then from `GenerationConfig.default_params()`, so a file only needs the
values that differ. This module does not import torch.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from .. import __version__
from ..errors import ConfigError

GENERATION_CONFIG_NAME = "generation_config.json"

# every field a GenerationConfig carries (all None until set)
FIELDS = (
    # length
    "max_length", "max_new_tokens", "min_length", "min_new_tokens", "early_stopping", "max_time", "stop_strings",
    # strategy
    "do_sample", "num_beams", "use_mtp",
    # cache
    "use_cache", "cache_implementation", "cache_config", "max_cache_len",
    # logits manipulation
    "temperature", "top_k", "top_p", "min_p", "top_h", "typical_p", "epsilon_cutoff", "eta_cutoff",
    "repetition_penalty", "encoder_repetition_penalty", "length_penalty", "no_repeat_ngram_size", "bad_words_ids",
    "renormalize_logits", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "sequence_bias",
    "token_healing", "guidance_scale", "watermarking_config",
    # outputs
    "num_return_sequences", "output_attentions", "output_hidden_states", "output_scores", "output_logits",
    "return_dict_in_generate",
    # special tokens
    "pad_token_id", "bos_token_id", "eos_token_id", "encoder_no_repeat_ngram_size", "decoder_start_token_id",
    # assisted generation (accepted and stored; not implemented)
    "is_assistant", "num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold",
    "prompt_lookup_num_tokens", "max_matching_ngram_size", "assistant_early_exit", "assistant_lookbehind",
    "target_lookbehind", "assistant_ensemble_weight", "speculation_type",
    # performance
    "compile_config", "disable_compile", "continuous_batching_config",
    # strategies Transformers 5 moved out of its core (implemented here)
    "low_memory", "penalty_alpha", "dola_layers", "diversity_penalty", "num_beam_groups", "constraints",
    "force_words_ids", "prefill_chunk_size",
)

# what `generate()` uses for a field that neither the call, nor the model, nor the file set
DEFAULT_PARAMS: dict[str, Any] = {
    "max_length": 20, "min_length": 0, "do_sample": False, "use_cache": True, "early_stopping": False,
    "num_beams": 1, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "typical_p": 1.0, "repetition_penalty": 1.0,
    "length_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None,
    "num_return_sequences": 1, "output_scores": False, "return_dict_in_generate": False,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "remove_invalid_values": False,
    "exponential_decay_length_penalty": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "encoder_repetition_penalty": 1.0, "num_assistant_tokens": 20,
    "num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.4, "assistant_lookbehind": 10,
    "target_lookbehind": 10, "num_beam_groups": 1, "diversity_penalty": 0.0,
}

# settings without a default that must still be numbers when a file states them (their type is checked on reading)
_NUMERIC = dict.fromkeys(("max_new_tokens", "min_new_tokens", "max_time", "min_p", "top_h", "guidance_scale",
                          "max_cache_len", "prompt_lookup_num_tokens", "max_matching_ngram_size", "penalty_alpha",
                          "prefill_chunk_size"), 0)
CACHE_IMPLEMENTATIONS = ("dynamic", "static", "offloaded", "offloaded_static", "quantized", "sliding_window",
                         "hybrid", "mamba", "hybrid_chunked", "paged")
# keys that describe the file, not the generation
_METADATA = ("transformers_version", "leanformers_version", "_commit_hash", "_from_model_config")
# arguments of generate() that are not settings
GENERATE_ARGUMENTS = ("logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus",
                      "assistant_model", "streamer", "negative_prompt_ids", "negative_prompt_attention_mask")


class GenerationMode:
    """Names of the decoding strategies (string constants, as Transformers' enum values)."""

    CONTRASTIVE_SEARCH = "contrastive_search"
    GREEDY_SEARCH = "greedy_search"
    SAMPLE = "sample"
    ASSISTED_GENERATION = "assisted_generation"
    DOLA_GENERATION = "dola_generation"
    BEAM_SEARCH = "beam_search"
    BEAM_SAMPLE = "beam_sample"
    CONSTRAINED_BEAM_SEARCH = "constrained_beam_search"
    GROUP_BEAM_SEARCH = "group_beam_search"


class GenerationConfig:
    """Settings of one `generate()` call: length, strategy, logits processing, outputs, special tokens."""

    extra_output_flags = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")

    def __init__(self, **kwargs):
        for name in FIELDS:
            setattr(self, name, kwargs.pop(name, None))
        kwargs.pop("_commit_hash", None)
        kwargs.pop("leanformers_version", None)
        self._from_model_config = kwargs.pop("_from_model_config", None)
        self.transformers_version = kwargs.pop("transformers_version", None)
        if not self._from_model_config:  # unknown keys of a generation_config.json are kept as they are
            for key, value in kwargs.items():
                setattr(self, key, value)
        elif kwargs.get("force_bos_token_to_be_generated", False):
            self.forced_bos_token_id = self.bos_token_id
        self.validate()

    # ------------------------------------------------------------------ comparison and display
    def __hash__(self):
        return hash(self.to_json_string(ignore_metadata=True))

    def __eq__(self, other):
        if not isinstance(other, GenerationConfig):
            return False
        return (self.to_json_string(use_diff=False, ignore_metadata=True)
                == other.to_json_string(use_diff=False, ignore_metadata=True))

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string(ignore_metadata=True)}"

    # ------------------------------------------------------------------ strategy
    def get_generation_mode(self, assistant_model=None) -> str:
        """The decoding strategy these settings select."""
        if self.constraints is not None or self.force_words_ids is not None:
            return GenerationMode.CONSTRAINED_BEAM_SEARCH
        if self.num_beams is None or self.num_beams == 1:
            if self.do_sample is True:
                return GenerationMode.SAMPLE
            if (self.top_k is not None and self.top_k > 1 and self.penalty_alpha is not None
                    and self.penalty_alpha > 0):
                return GenerationMode.CONTRASTIVE_SEARCH
            return GenerationMode.GREEDY_SEARCH
        if self.num_beam_groups is not None and self.num_beam_groups > 1:
            return GenerationMode.GROUP_BEAM_SEARCH
        return GenerationMode.BEAM_SAMPLE if self.do_sample is True else GenerationMode.BEAM_SEARCH

    @staticmethod
    def _get_default_generation_params() -> dict[str, Any]:
        return dict(DEFAULT_PARAMS)

    default_params = _get_default_generation_params

    # ------------------------------------------------------------------ validation
    def validate(self, strict: bool = False, user_set_attributes=None):
        """Raise ConfigError for settings that cannot work, whatever the model and the prompt."""
        if self.early_stopping not in (None, True, False, "never"):
            raise ConfigError(f"early_stopping must be True, False or 'never', but is {self.early_stopping!r}.")
        if self.max_new_tokens is not None and self.max_new_tokens <= 0:
            raise ConfigError(f"max_new_tokens must be greater than 0, but is {self.max_new_tokens}. Ask for at "
                              f"least one new token (or use max_length to bound the whole sequence).")
        if self.max_length is not None and self.max_length < 0:
            raise ConfigError(f"max_length must be a positive number of tokens, but is {self.max_length}.")
        if self.top_p is not None and not 0.0 < float(self.top_p) <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], but is {self.top_p}. Use top_p=1.0 to keep every token.")
        if self.cache_implementation is not None and self.cache_implementation not in CACHE_IMPLEMENTATIONS:
            raise ConfigError(f"Invalid cache_implementation={self.cache_implementation!r}; choose one of "
                              f"{CACHE_IMPLEMENTATIONS}.")
        self._validate_beams()
        self._validate_return_sequences()
        if self.suppress_tokens is not None:
            suppressed = set(self.suppress_tokens)
            for name in ("forced_bos_token_id", "forced_eos_token_id"):
                forced = getattr(self, name)
                forced = set() if forced is None else ({forced} if isinstance(forced, int) else set(forced))
                if forced and forced <= suppressed:
                    raise ConfigError(f"Every token of {name} ({sorted(forced)}) is also in suppress_tokens, so "
                                      f"no token could be generated; remove it from one of the two.")
        for name in GENERATE_ARGUMENTS:
            if name in self.__dict__:
                raise ConfigError(f"{name} is not a setting of GenerationConfig; pass it to generate() directly.")

    def _validate_beams(self):
        groups = self.num_beam_groups
        if self.num_beams is not None and (not isinstance(self.num_beams, int) or self.num_beams < 1):
            raise ConfigError(f"num_beams must be a positive integer, but is {self.num_beams!r}.")
        if groups is not None and groups > 1:
            beams = self.num_beams or 1
            if groups > beams or beams % groups != 0:
                raise ConfigError(f"num_beams ({beams}) must be divisible by num_beam_groups ({groups}) for diverse "
                                  f"beam search; e.g. num_beams={groups * max(1, beams // groups)}.")
            if self.do_sample is True:
                raise ConfigError("Diverse (group) beam search does not sample: set do_sample=False or "
                                  "num_beam_groups=1.")
        if (self.constraints is not None or self.force_words_ids is not None) and self.do_sample is True:
            raise ConfigError("Constrained beam search (constraints / force_words_ids) does not sample: set "
                              "do_sample=False.")

    def _validate_return_sequences(self):
        n = self.num_return_sequences
        if n is None or n <= 1:
            return
        if self.num_beams is None or self.num_beams == 1:
            if self.do_sample is not True:
                raise ConfigError(f"Greedy decoding returns one sequence per prompt; num_return_sequences={n} needs "
                                  f"do_sample=True or num_beams >= {n}.")
        elif n > self.num_beams:
            raise ConfigError(f"num_return_sequences ({n}) has to be smaller or equal to num_beams "
                              f"({self.num_beams}).")

    # ------------------------------------------------------------------ dict / json
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items()
               if k not in ("_commit_hash", "_original_object_hash", "_mask_length")}
        if out.get("transformers_version") is None:
            out.pop("transformers_version", None)
        out["leanformers_version"] = __version__
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Only the values that differ from a fresh GenerationConfig (plus the version)."""
        base = GenerationConfig().to_dict()
        return {k: v for k, v in self.to_dict().items()
                if k not in base or k in ("transformers_version", "leanformers_version") or v != base[k]}

    def to_json_string(self, use_diff: bool = True, ignore_metadata: bool = False, keys_to_pop=None) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        for key in keys_to_pop or ():
            data.pop(key, None)
        if ignore_metadata:
            for key in _METADATA:
                data.pop(key, None)
        return json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path, use_diff: bool = True, keys_to_pop=None):
        with open(json_file_path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string(use_diff=use_diff, keys_to_pop=keys_to_pop))

    def update(self, defaults_only: bool = False, allow_custom_entries: bool = False, **kwargs) -> dict[str, Any]:
        """Set the given attributes that exist here (or only the unset ones); return the kwargs left unused."""
        used = []
        for key, value in kwargs.items():
            if allow_custom_entries and not hasattr(self, key):
                setattr(self, key, value)
                used.append(key)
            elif hasattr(self, key) and key not in ("extra_output_flags", "default_params"):
                if not defaults_only or getattr(self, key) is None:
                    setattr(self, key, value)
                    used.append(key)
        self.validate()
        return {k: v for k, v in kwargs.items() if k not in used}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs) -> GenerationConfig:
        return_unused = kwargs.pop("return_unused_kwargs", False)
        kwargs.pop("_from_auto", None)
        kwargs.pop("_from_pipeline", None)
        config = cls(**{**config_dict, **kwargs})
        unused = config.update(**kwargs)
        return (config, unused) if return_unused else config

    @classmethod
    def from_pretrained(cls, pretrained_model_name, config_file_name=None, cache_dir=None, force_download=False,
                        local_files_only=False, token=None, revision=None, **kwargs) -> GenerationConfig:
        """Read `generation_config.json` from a folder, a file path or a hub repo."""
        from ..configuration import check_values, read_json
        from ..hub import resolve_file

        name = config_file_name or GENERATION_CONFIG_NAME
        subfolder = kwargs.pop("subfolder", "")
        for key in ("proxies", "resume_download", "use_auth_token", "_from_pipeline", "_from_auto", "repo_type"):
            kwargs.pop(key, None)
        path = str(pretrained_model_name)
        if os.path.isfile(os.path.join(path, name)) and not subfolder:
            path = os.path.join(path, name)
        elif not os.path.isfile(path):
            path = resolve_file(path, name, cache_dir=cache_dir, force_download=force_download,
                                local_files_only=local_files_only, token=token, revision=revision,
                                subfolder=subfolder)
        data = read_json(path)
        check_values(cls, {**DEFAULT_PARAMS, "early_stopping": None, **_NUMERIC}, data, path, per_layer=False)
        if kwargs.pop("_from_model_config", False):
            return cls.from_model_config(data)
        result = cls.from_dict(data, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        config._original_object_hash = hash(config)
        return result

    @classmethod
    def from_model_config(cls, model_config) -> GenerationConfig:
        """Generation settings a model's config.json carries (special tokens, legacy generation keys)."""
        full = model_config if isinstance(model_config, dict) else model_config.to_dict()
        full = {k: v for k, v in full.items() if k != "_from_model_config"}
        config = cls.from_dict({k: v for k, v in full.items() if v is not None}, _from_model_config=True)
        decoder = _decoder_config_dict(model_config)
        fresh = GenerationConfig()
        for attr in config.to_dict():
            if attr in decoder and getattr(config, attr, None) == getattr(fresh, attr, None):
                setattr(config, attr, decoder[attr])
        if not config.return_dict_in_generate and any(getattr(config, f, False) for f in cls.extra_output_flags):
            config.return_dict_in_generate = True
        config._original_object_hash = hash(config)
        return config

    def save_pretrained(self, save_directory, config_file_name=None, push_to_hub: bool = False, **kwargs):
        """Write `generation_config.json` (only the values that differ from the defaults)."""
        if push_to_hub:
            raise ConfigError("push_to_hub is not supported; upload the folder with huggingface_hub instead.")
        self.validate(strict=True)
        if os.path.isfile(save_directory):
            raise ConfigError(f"save_pretrained expects a folder, but {save_directory} is a file.")
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, config_file_name or GENERATION_CONFIG_NAME)
        self.to_json_file(path, use_diff=True, keys_to_pop=["compile_config"])


def _decoder_config_dict(model_config) -> dict[str, Any]:
    """The decoder's settings of a model config (the config itself for decoder-only models)."""
    if isinstance(model_config, dict):
        for name in ("decoder", "generator", "text_config"):
            if model_config.get(name):
                sub = model_config[name]
                return sub if isinstance(sub, dict) else sub.to_dict()
        return model_config
    get_text_config = getattr(model_config, "get_text_config", None)
    text_config = get_text_config(decoder=True) if get_text_config is not None else model_config
    return text_config.to_dict()


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "to_dict") and not isinstance(obj, type):
        return _jsonable(obj.to_dict())
    return obj


__all__ = ["GenerationConfig", "GenerationMode", "GENERATION_CONFIG_NAME", "DEFAULT_PARAMS"]
