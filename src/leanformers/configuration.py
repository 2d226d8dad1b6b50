"""PretrainedConfig: the `config.json` of a checkpoint as a small Python object.

Field names and defaults follow the Hugging Face configs, so a `config.json` written by either library loads in the
other. Keys this library does not know are kept as attributes and written back unchanged.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from typing import Any

from . import __version__
from .errors import ConfigError, refuse_remote_code

CONFIG_NAME = "config.json"

# Attributes every config carries, whatever its model type.
COMMON_DEFAULTS: dict[str, Any] = {
    "architectures": None,
    "output_hidden_states": False,
    "output_attentions": False,
    "return_dict": True,
    "dtype": None,
    "chunk_size_feed_forward": 0,
    "is_encoder_decoder": False,
    "is_decoder": False,
    "add_cross_attention": False,
    "tie_word_embeddings": True,
    "problem_type": None,
    "pad_token_id": None,
    "bos_token_id": None,
    "eos_token_id": None,
}

# Keys that only describe the file, never the model.
_FILE_ONLY_KEYS = ("transformers_version", "leanformers_version", "_commit_hash", "torch_dtype", "model_type")
_PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")
# JSON has no inf/nan: both libraries write them as {"__float__": "Infinity"} so any JSON reader accepts the file.
_FLOAT_TAG = "__float__"
_SPECIAL_FLOATS = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}
# Sizes a config may state: beyond these no model can be built (a layer count this large would take hours to build
# even on the meta device), so the file is damaged or hostile.
MAX_CONFIG_INT = 2**40
MAX_LAYERS = 4096
# the width of one attention head (real models: 64 to 512); tables such as rotary frequencies are built at this size
MAX_HEAD_DIM = 2**16
_HEAD_DIM_KEYS = ("head_dim", "d_head", "d_kv", "kv_channels", "rotary_dim")


class PretrainedConfig:
    """Base configuration. Subclasses set `model_type` and their own `defaults`; `attribute_map` gives aliases."""

    model_type: str = ""
    defaults: dict[str, Any] = {}
    attribute_map: dict[str, str] = {}

    def __init__(self, **kwargs):
        kwargs = dict(kwargs)
        for key in _FILE_ONLY_KEYS:
            value = kwargs.pop(key, None)
            if key == "torch_dtype" and value is not None and kwargs.get("dtype") is None:
                kwargs["dtype"] = value
        num_labels = kwargs.pop("num_labels", None)
        self._name_or_path = str(kwargs.pop("name_or_path", kwargs.pop("_name_or_path", "")))
        for key, value in {**COMMON_DEFAULTS, **self.defaults}.items():
            setattr(self, key, copy.deepcopy(value))
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.dtype = _dtype_value(self.dtype)
        if isinstance(kwargs.get("pruned_heads"), dict):  # JSON keys are strings; layers are numbered
            self.pruned_heads = {int(layer): list(heads) for layer, heads in kwargs["pruned_heads"].items()}
        self._set_labels(id2label, label2id, num_labels)
        if self.problem_type not in _PROBLEM_TYPES:
            raise ConfigError(f"problem_type={self.problem_type!r} is not one of {_PROBLEM_TYPES[1:]}.")
        if self.problem_type == "single_label_classification" and self.num_labels == 1:
            raise ConfigError("problem_type='single_label_classification' needs num_labels >= 2; for one output "
                              "use problem_type='regression', for binary classification num_labels=2.")

    # ------------------------------------------------------------------ aliases and labels
    def __setattr__(self, key, value):
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattr__(self, key):
        # Only called when normal lookup fails: resolve an alias such as `n_embd` -> `hidden_size`.
        alias = type(self).attribute_map.get(key)
        if alias is not None:
            return getattr(self, alias)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'")

    def _set_labels(self, id2label, label2id, num_labels):
        # Like Transformers: JSON keys of id2label become ints, label2id is kept as given (None when absent),
        # and an explicit num_labels that disagrees with id2label replaces both maps with LABEL_i names.
        if id2label is not None:
            if not isinstance(id2label, dict) or not all(str(k).lstrip("-").isdigit() for k in id2label):
                raise ConfigError(f"The config's id2label must map label ids to names, such as "
                                  f"{{'0': 'NEGATIVE'}}; got {_short(id2label)}. Fix config.json.")
            self.id2label = {int(k): v for k, v in id2label.items()}
            self.label2id = label2id
            if num_labels is not None and num_labels != len(self.id2label):
                self.num_labels = num_labels
        else:
            self.id2label = None
            self.num_labels = num_labels if num_labels is not None else 2

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int):
        if getattr(self, "id2label", None) is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value):
        self._name_or_path = str(value)

    @property
    def use_return_dict(self) -> bool:
        # torchscript=True (the flag of Transformers 4.x) asks for tuple outputs, which tracing needs
        return self.return_dict and not getattr(self, "torchscript", False)

    @property
    def torch_dtype(self):
        """Older name of `dtype`, still written by many config.json files."""
        return self.dtype

    @torch_dtype.setter
    def torch_dtype(self, value):
        self.dtype = _dtype_value(value)

    def __iter__(self):
        return iter([k for k in self.__dict__ if not k.startswith("_")])

    # ------------------------------------------------------------------ dict / json
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}
        out["model_type"] = self.model_type
        if out.get("dtype") is not None and not isinstance(out["dtype"], str):
            out["dtype"] = str(out["dtype"]).replace("torch.", "")
        out["leanformers_version"] = __version__
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Only what differs from a fresh config of this class (plus the keys that identify the file)."""
        base = type(self)().to_dict()
        keep = {"model_type", "leanformers_version", "architectures", "id2label", "label2id"}
        return {k: v for k, v in self.to_dict().items() if k in keep or k not in base or base[k] != v}

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        if data.get("id2label") is not None:
            data["id2label"] = {str(k): v for k, v in data["id2label"].items()}
        return json.dumps(_encode_floats(data), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path, use_diff: bool = True):
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string(use_diff=use_diff))

    def update(self, values: dict[str, Any]):
        for key, value in values.items():
            setattr(self, key, value)

    def __eq__(self, other):
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string(use_diff=False)}"

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], return_unused_kwargs: bool = False, **kwargs):
        """Build from a dict; keyword arguments that name a setting (known, or present in the dict) override it."""
        kwargs = {k: v for k, v in kwargs.items() if not (k in ("dtype", "torch_dtype") and v == "auto")}
        settings = {**config_dict, **_config_kwargs(cls, kwargs)}
        check_settings(cls, settings, "the config")
        try:
            config = cls(**settings)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"The config (config.json or keyword arguments) of {cls.__name__} holds a setting of "
                              f"the wrong type or value ({type(err).__name__}: {err}). Fix or re-download "
                              f"config.json.") from None
        unused = {}
        for key, value in kwargs.items():
            if _is_config_key(cls, key):
                continue
            if key in config.__dict__ and not key.startswith("_"):
                setattr(config, key, value)
            else:
                unused[key] = value
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_json_file(cls, path):
        return cls(**read_json(path))

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read `config.json` of a folder, a file or a hub repo (or, with `gguf_file=`, the metadata of that GGUF
        file). Returns (config dict, kwargs not used to find it)."""
        from .hub import HUB_KWARGS, resolve_file

        hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_KWARGS}
        path = str(pretrained_model_name_or_path)
        gguf_file = kwargs.pop("gguf_file", None)
        if gguf_file:
            from .gguf import load_gguf_config_dict

            return load_gguf_config_dict(path, gguf_file, hub_kwargs), kwargs
        if os.path.isfile(path):
            config_file = path
        else:
            config_file = resolve_file(path, kwargs.pop("_config_file_name", CONFIG_NAME), **hub_kwargs)
        data = read_json(config_file)
        check_settings(cls, data, config_file)
        return data, kwargs

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        return_unused = kwargs.pop("return_unused_kwargs", False)
        if kwargs.pop("trust_remote_code", False):
            refuse_remote_code()
        config_dict, kwargs = cls.get_config_dict(pretrained_model_name_or_path, **kwargs)
        found = config_dict.get("model_type")
        if cls.model_type and found and found != cls.model_type:
            raise ConfigError(
                f"{pretrained_model_name_or_path} holds a '{found}' config, not '{cls.model_type}'. "
                f"Load it with AutoConfig.from_pretrained instead."
            )
        config, unused = cls.from_dict(config_dict, return_unused_kwargs=True, **kwargs)
        config.name_or_path = pretrained_model_name_or_path
        return (config, unused) if return_unused else config

    def save_pretrained(self, save_directory, **_ignored):
        if os.path.isfile(save_directory):
            raise ConfigError(f"save_pretrained expects a folder, but {save_directory} is a file.")
        os.makedirs(save_directory, exist_ok=True)
        self.to_json_file(os.path.join(save_directory, CONFIG_NAME), use_diff=False)


def read_json(path) -> dict[str, Any]:
    """Read a JSON object from disk with errors that name the file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ConfigError(f"{path} holds a JSON {type(data).__name__}, expected an object of settings.")
        return _decode_floats(data)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}). Re-download or fix the file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file; is it really a config.json? Re-download it.") from None
    except RecursionError:
        raise ConfigError(f"{path} nests its values too deeply to be a config; the file is damaged or hostile. "
                          f"Re-download it from a source you trust.") from None


def check_settings(cls, settings: dict[str, Any], source: str):
    """Refuse settings no config can hold, naming `source` (a file) and the key: names that would replace a
    Python attribute of the object (`__class__`, a method), a value whose type differs from the setting's
    default (a string for a size), and sizes or layer counts no model could be built with."""
    check_values(cls, {**COMMON_DEFAULTS, **cls.defaults}, settings, source)


def check_values(cls, defaults: dict[str, Any], settings: dict[str, Any], source: str, per_layer: bool = True):
    """check_settings for any settings object (`cls`) whose settings default to `defaults` (a None default
    accepts any type; a number, a number of either kind, or with `per_layer` a list of them)."""
    for key, value in settings.items():
        if not isinstance(key, str):
            continue
        if key.startswith("__") or callable(getattr(cls, key, None)) or _read_only(cls, key):
            raise ConfigError(f"{source} has the key {key!r}, which names a Python attribute of {cls.__name__}, "
                              f"not a setting; the file is damaged or hostile. Remove the key.")
        if key == "model_type" and value is not None and not isinstance(value, str):
            raise ConfigError(f"{source} states model_type={value!r}; it must be a name such as 'bert'.")
        if key.endswith(("token_id", "token_ids", "suppress_tokens", "words_ids")) and not _is_ids(key, value):
            raise ConfigError(f"{source} states {key}={_short(value)}; it must be a token id or a list of token "
                              f"ids (integers). Fix or re-download the file.")
        default = defaults.get(key)
        if value is None or default is None or key.endswith(("token_id", "token_ids")):  # an id or a list of ids
            _check_number(key, value, source)
            continue
        # a number may also be given per layer (a list, as Longformer's attention_window)
        kinds = (int, float, *((list,) if per_layer else ())) if isinstance(default, (int, float)) else \
            (list, tuple) if isinstance(default, (list, tuple)) else type(default)
        if not isinstance(value, kinds):
            raise ConfigError(f"{source} states {key}={_short(value)}, a {type(value).__name__}, where a "
                              f"{type(default).__name__} such as {default!r} belongs. Fix or re-download the file.")
        _check_number(key, value, source)


def _is_ids(key: str, value) -> bool:
    """None, or what the key holds: a token id or a list of them (`*_token_id`), a list of ids
    (`suppress_tokens`), a list of lists of ids (`bad_words_ids`)."""
    if value is None:
        return True
    if key.endswith("words_ids"):
        return isinstance(value, list) and all(isinstance(v, list) and _all_ints(v) for v in value)
    if key.endswith("suppress_tokens"):
        return isinstance(value, list) and _all_ints(value)
    return type(value) is int or isinstance(value, list) and _all_ints(value)  # -1 is a "no token" some write


def _all_ints(values: list) -> bool:
    return all(type(v) is int for v in values)


def _check_number(key: str, value, source: str):
    if type(value) is not int:
        return
    limit = MAX_LAYERS if "layers" in key or key in ("n_layer", "num_layers") else \
        MAX_HEAD_DIM if key in _HEAD_DIM_KEYS else MAX_CONFIG_INT
    if not -MAX_CONFIG_INT <= value <= limit:
        raise ConfigError(f"{source} states {key}={_short(value)}, beyond what any model holds (at most {limit}); "
                          f"the file is damaged or hostile. Fix or re-download it.")


def _read_only(cls, key: str) -> bool:
    attribute = getattr(cls, key, None)
    return isinstance(attribute, property) and attribute.fset is None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _encode_floats(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return {_FLOAT_TAG: "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: _encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_floats(v) for v in value]
    return value


def _decode_floats(value):
    if isinstance(value, dict):
        if set(value) == {_FLOAT_TAG} and value[_FLOAT_TAG] in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value[_FLOAT_TAG]]
        return {k: _decode_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_floats(v) for v in value]
    return value


def _dtype_value(dtype):
    """A dtype name becomes a torch.dtype (as in Transformers) once torch is loaded; importing it here would make
    reading a config cost the whole of torch."""
    torch = sys.modules.get("torch")
    if isinstance(dtype, str) and torch is not None and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    return dtype


def _is_config_key(cls, key: str) -> bool:
    return key in COMMON_DEFAULTS or key in cls.defaults or key in cls.attribute_map or key in (
        "num_labels", "id2label", "label2id", "torch_dtype", "dtype", "torchscript")


def _config_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if _is_config_key(cls, k)}

