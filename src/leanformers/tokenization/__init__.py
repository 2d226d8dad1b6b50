"""Tokenizers: the transformers tokenizer API over the Rust `tokenizers` engine.

Names are resolved on first use, so importing this package loads neither `tokenizers` nor torch.
"""

from __future__ import annotations

import importlib
import json
import os

_FAMILY_NAMES = ("BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "GPT2Tokenizer", "RobertaTokenizer",
                 "BartTokenizer", "XLMRobertaTokenizer", "CamembertTokenizer", "AlbertTokenizer", "XLNetTokenizer",
                 "T5Tokenizer", "LlamaTokenizer", "Qwen2Tokenizer", "OpenAIGPTTokenizer", "PegasusTokenizer",
                 "MBartTokenizer", "MobileBertTokenizer", "RetriBertTokenizer")
# public name -> (module, attribute)
_EXPORTS = {
    "PreTrainedTokenizerFast": ("base", "PreTrainedTokenizerFast"),
    "PreTrainedTokenizerBase": ("base", "PreTrainedTokenizerFast"),
    "PreTrainedTokenizer": ("base", "PreTrainedTokenizerFast"),
    "TokenizersBackend": ("base", "PreTrainedTokenizerFast"),
    "BatchEncoding": ("encoding", "BatchEncoding"),
    "CharSpan": ("encoding", "CharSpan"),
    "TokenSpan": ("encoding", "TokenSpan"),
    "PaddingStrategy": ("strategies", "PaddingStrategy"),
    "TruncationStrategy": ("strategies", "TruncationStrategy"),
    "TensorType": ("strategies", "TensorType"),
}
for _name in _FAMILY_NAMES:
    _EXPORTS[_name] = _EXPORTS[_name + "Fast"] = ("families", _name + "Fast")
# Longformer checkpoints name RoBERTa's tokenizer after themselves
_FAMILY_NAMES += ("LongformerTokenizer",)
_EXPORTS["LongformerTokenizer"] = _EXPORTS["LongformerTokenizerFast"] = ("families", "RobertaTokenizerFast")
# DeBERTa's families live in their own module
_FAMILY_NAMES += ("DebertaTokenizer", "DebertaV2Tokenizer")
for _name in ("DebertaTokenizer", "DebertaV2Tokenizer"):
    _EXPORTS[_name] = _EXPORTS[_name + "Fast"] = ("deberta", _name + "Fast")
# Reformer's family lives in its own module
_FAMILY_NAMES += ("ReformerTokenizer",)
_EXPORTS["ReformerTokenizer"] = _EXPORTS["ReformerTokenizerFast"] = ("reformer", "ReformerTokenizerFast")
# families with a text step in Python and no "Fast" class in transformers: name -> module
_OWN_MODULE_FAMILIES = {"XLMTokenizer": "xlm", "MarianTokenizer": "marian", "CTRLTokenizer": "ctrl",
                        "FlaubertTokenizer": "flaubert"}
_OWN_MODULE_FAMILIES["TransfoXLTokenizer"] = "transfo_xl"
_OWN_MODULE_FAMILIES["BertGenerationTokenizer"] = "bert_generation"
for _name, _module in _OWN_MODULE_FAMILIES.items():
    _EXPORTS[_name] = (_module, _name)
# tokenizer_class values of checkpoints that mean "the engine as saved, no family behaviour"
_GENERIC = ("PreTrainedTokenizerFast", "PreTrainedTokenizer", "TokenizersBackend", "PreTrainedTokenizerBase")

__all__ = sorted([*_EXPORTS, "AddedToken", "tokenizer_class", "tokenizer_class_name"])


def __getattr__(name):
    if name == "AddedToken":
        from tokenizers import AddedToken

        return AddedToken
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leanformers.tokenization' has no attribute '{name}'")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _class_name(saved: str) -> str:
    """A checkpoint's `tokenizer_class` -> the name of the leanformers class that loads it."""
    base = saved.removesuffix("Fast")
    if base in _OWN_MODULE_FAMILIES:
        return base
    if base in _FAMILY_NAMES:
        return base + "Fast"
    return "PreTrainedTokenizerFast"


def _is_byte_level(path_or_repo, hub_kwargs) -> bool:
    from ..hub import resolve_file

    path = resolve_file(path_or_repo, "tokenizer.json", missing_ok=True, **hub_kwargs)
    if path is None:
        return False
    with open(path, encoding="utf-8") as handle:
        return '"ByteLevel"' in handle.read()


def tokenizer_class_name(path_or_repo, **hub_kwargs) -> str | None:
    """Name of the leanformers tokenizer class for a checkpoint, from the `tokenizer_class` of its
    tokenizer_config.json; None when the file or the key is absent. Unknown classes map to
    PreTrainedTokenizerFast, which runs tokenizer.json as it is."""
    from ..hub import HUB_KWARGS, resolve_file

    hub_kwargs = {key: value for key, value in hub_kwargs.items() if key in HUB_KWARGS}
    if os.path.isfile(str(path_or_repo)):
        return None
    path = resolve_file(path_or_repo, "tokenizer_config.json", missing_ok=True, **hub_kwargs)
    if path is None:
        return None
    from .files import read_config

    saved = read_config(path).get("tokenizer_class")
    if not saved:
        return None
    name = _class_name(saved)
    # Llama-3 style checkpoints declare LlamaTokenizer but ship a byte-level tokenizer.json
    if name == "LlamaTokenizerFast" and _is_byte_level(path_or_repo, hub_kwargs):
        return "PreTrainedTokenizerFast"
    return name


def tokenizer_class(name: str):
    """The class for a tokenizer class name ("BertTokenizer", "BertTokenizerFast", "PreTrainedTokenizerFast", ...)."""
    from ..errors import TokenizerError

    if name in _GENERIC:
        return __getattr__("PreTrainedTokenizerFast")
    if name in _EXPORTS and name.removesuffix("Fast") in _FAMILY_NAMES or name in _OWN_MODULE_FAMILIES:
        return __getattr__(name)
    known = ", ".join(sorted({n + "Fast" for n in _FAMILY_NAMES} | {"PreTrainedTokenizerFast"} |
                             set(_OWN_MODULE_FAMILIES)))
    raise TokenizerError(f"Unknown tokenizer class {name!r}: leanformers has {known}.")
