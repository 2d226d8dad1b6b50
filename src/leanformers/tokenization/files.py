"""Tokenizer files: which ones a checkpoint has, how they combine into __init__ keywords (same precedence as
transformers), and writing a folder that transformers 4 and 5 load back."""

from __future__ import annotations

import copy
import json
import os

from tokenizers import AddedToken

from ..errors import ResourceNotFoundError, TokenizerError, engine_errors, refuse_remote_code
from ..hub import HUB_KWARGS, resolve_file

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"
_ADDED_TOKEN_FIELDS = ("content", "single_word", "lstrip", "rstrip", "normalized", "special")
# from_pretrained keywords that only concern how the call is made, not the tokenizer
_CALL_ONLY = ("_from_auto", "_from_pipeline", "use_fast", "_is_local")
# keys never written back to tokenizer_config.json
_NOT_SAVED = {"vocab", "merges", "tokenizer_object", "tokenizer_file", "vocab_file", "merges_file", "name_or_path",
              "added_tokens_decoder", "is_local", "local_files_only", "backend", "files_loaded",
              "model_specific_special_tokens", "special_tokens_map_file", "extra_special_tokens",
              "additional_special_tokens", "add_bos_token", "add_eos_token", "chat_template", "tokenizer_class",
              "init_inputs", "auto_map", "processor_class"}
# the JSON types tokenizer_config.json may give its common keys (None is always allowed); others are family options
_TOKEN = (str, dict)
_CONFIG_KINDS = {
    **dict.fromkeys(("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"),
                    _TOKEN),
    "model_max_length": (int, float), "padding_side": str, "truncation_side": str, "chat_template": (str, list, dict),
    "additional_special_tokens": list, "extra_special_tokens": (list, dict), "added_tokens_decoder": dict,
    "tokenizer_class": str, "do_lower_case": (bool, int), "clean_up_tokenization_spaces": (bool, int),
    "add_bos_token": (bool, int), "add_eos_token": (bool, int), "strip_accents": (bool, int),
    "tokenize_chinese_chars": (bool, int), "add_prefix_space": (bool, int), "legacy": (bool, int),
}
KNOWN_FILES = (TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, ADDED_TOKENS_FILE, CHAT_TEMPLATE_FILE,
               "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model",
               "spm.model", "source.spm", "target.spm")


def reading_errors(path):
    """What the engines (tokenizers, sentencepiece, json) raise while a tokenizer is built from the files of `path`
    becomes a TokenizerError naming the folder and its tokenizer files (leanformers' own errors pass through)."""
    path = os.fspath(path)

    def named(err):
        names = sorted(n for n in os.listdir(path) if n in KNOWN_FILES) if os.path.isdir(path) else [path]
        return TokenizerError(f"Cannot build the tokenizer from {path} ({', '.join(names)}): {type(err).__name__}: "
                              f"{err}. One of these files is damaged or holds a value of the wrong type (or a "
                              f"keyword argument does); delete the tokenizer files and download or save them "
                              f"again.")
    return engine_errors(named)


def read_config(path) -> dict:
    """tokenizer_config.json, its common keys checked (a TokenizerError names the file and the key)."""
    config = read_json(path)
    _check_config(config, path)
    return config


def _check_config(config: dict, path):
    """tokenizer_config.json values of the wrong JSON type are refused here, naming the file and the key, rather
    than failing later inside the engine or at the first call."""
    for key, kinds in _CONFIG_KINDS.items():
        value = config.get(key)
        if value is not None and not isinstance(value, kinds):
            wanted = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
            raise TokenizerError(f"{path} sets {key} to {str(value)[:60]!r} (a {type(value).__name__}); it must be "
                                 f"a {wanted}. The file is damaged: fix it, or download or save the tokenizer "
                                 f"again.")


def added_token(value) -> AddedToken:
    """An AddedToken from its saved dict form (ignoring `id` and `__type`), or the AddedToken itself."""
    if isinstance(value, AddedToken):
        return value
    return AddedToken(**{key: value[key] for key in _ADDED_TOKEN_FIELDS if key in value})


def _restore_added_tokens(obj):
    """Turn the {"__type": "AddedToken", ...} dicts of a saved config back into AddedToken objects."""
    if isinstance(obj, dict):
        if obj.get("__type") == "AddedToken":
            return added_token(obj)
        return {key: _restore_added_tokens(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_restore_added_tokens(item) for item in obj]
    return obj


def read_json(path) -> dict:
    """A tokenizer file's JSON object; a damaged file or one that holds no object is a TokenizerError naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise TokenizerError(f"{path} is not valid JSON ({err}); the file is damaged or truncated: delete it and "
                             f"download or save the tokenizer again.") from None
    if not isinstance(data, dict):
        raise TokenizerError(f"{path} holds a JSON {type(data).__name__}, not an object; the file is damaged: "
                             f"delete it and download or save the tokenizer again.")
    return data


def _resolve(path, name, hub):
    return resolve_file(path, name, missing_ok=True, **hub)


def _local_templates(path, hub) -> dict:
    folder = os.path.join(path, hub.get("subfolder") or "", CHAT_TEMPLATE_DIR)
    if not os.path.isdir(folder):
        return {}
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".jinja"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                out[name.removesuffix(".jinja")] = handle.read()
    return out


def _find_files(cls, path: str, hub: dict) -> tuple[dict, dict]:
    """(files found: keyword -> local path, tokenizer_config.json content)."""
    if os.path.isfile(path):
        key = "tokenizer_file" if path.endswith(".json") else next(iter(cls.vocab_files_names), "vocab_file")
        return {key: path}, {}
    config_path = _resolve(path, TOKENIZER_CONFIG_FILE, hub)
    config = read_config(config_path) if config_path else {}
    files = {"tokenizer_file": _resolve(path, TOKENIZER_FILE, hub)}
    if files["tokenizer_file"] is None:
        for key, name in cls.vocab_files_names.items():
            files[key] = _resolve(path, name, hub)
        if not any(files.values()):
            if not os.path.isdir(path):  # a repo id: let the hub say why (not cached, offline, no such repo)
                resolve_file(path, TOKENIZER_FILE, **hub)
            wanted = ", ".join([TOKENIZER_FILE, *cls.vocab_files_names.values()])
            raise ResourceNotFoundError(f"{path} has no tokenizer files: {cls.__name__} needs one of {wanted}. "
                                        f"Check the path, or pass the folder of a checkpoint that has them.")
    for name in (SPECIAL_TOKENS_MAP_FILE, ADDED_TOKENS_FILE, CHAT_TEMPLATE_FILE):
        files[name] = _resolve(path, name, hub)
    templates = _local_templates(path, hub) if os.path.isdir(path) else {}
    if files[CHAT_TEMPLATE_FILE]:
        with open(files[CHAT_TEMPLATE_FILE], encoding="utf-8") as handle:
            templates["default"] = handle.read()
    if templates:
        config["chat_template"] = templates["default"] if list(templates) == ["default"] else templates
    return {key: value for key, value in files.items() if value}, config


def load_init_kwargs(cls, pretrained_model_name_or_path, kwargs: dict) -> dict:
    """The __init__ keywords of `cls` for a checkpoint: tokenizer_config.json, then the caller's keywords, then
    the special tokens of the legacy files when the config does not list its added tokens."""
    kwargs = dict(kwargs)
    if kwargs.pop("trust_remote_code", False):
        refuse_remote_code()
    hub = {key: kwargs.pop(key) for key in list(kwargs) if key in HUB_KWARGS}
    for key in _CALL_ONLY:
        kwargs.pop(key, None)
    path = os.fspath(pretrained_model_name_or_path)
    with reading_errors(path):
        return _init_kwargs(cls, path, kwargs, hub)


def _init_kwargs(cls, path: str, kwargs: dict, hub: dict) -> dict:
    files, config = _find_files(cls, path, hub)
    for key in ("tokenizer_class", "init_inputs", "auto_map", "_commit_hash"):
        config.pop(key, None)
    if "tokenizer_file" in files:  # tokenizer.json already holds the post-processor these flags would build
        config.pop("add_bos_token", None)
        config.pop("add_eos_token", None)
    init = {**_restore_added_tokens(config), **kwargs}
    if "additional_special_tokens" in init and not init.get("extra_special_tokens"):
        init["extra_special_tokens"] = init.pop("additional_special_tokens")
    added = _added_tokens(cls, init, files, kwargs)
    init["added_tokens_decoder"] = added
    by_content = {token.content: token for token in added.values()}
    for key in cls.SPECIAL_TOKENS_ATTRIBUTES:
        if isinstance(init.get(key), str) and init[key] in by_content:
            init[key] = by_content[init[key]]
    for key in ("tokenizer_file", *cls.vocab_files_names):
        if key in files and kwargs.get(key) is None:
            init[key] = files[key]
    init["name_or_path"] = path
    init["_from_files"] = True
    return init


def _added_tokens(cls, init: dict, files: dict, kwargs: dict) -> dict[int, AddedToken]:
    """id -> AddedToken from the config's added_tokens_decoder, else from the legacy files."""
    if "added_tokens_decoder" in init:
        decoder = init["added_tokens_decoder"] or {}
        if not all(isinstance(token, (dict, AddedToken)) for token in decoder.values()):
            raise TokenizerError("added_tokens_decoder entries must be AddedToken dicts (content, lstrip, ...).")
        return {int(index): added_token(token) for index, token in decoder.items()}
    added = {}
    if SPECIAL_TOKENS_MAP_FILE in files:
        for key, value in read_json(files[SPECIAL_TOKENS_MAP_FILE]).items():
            if kwargs.get(key):
                continue
            if key in ("additional_special_tokens", "extra_special_tokens") and isinstance(value, list):
                merged = list(init.get("extra_special_tokens") or [])
                for token in value:
                    token = added_token({**token, "special": True}) if isinstance(token, dict) else token
                    if token not in merged:
                        merged.append(token)
                init["extra_special_tokens"] = merged
            elif isinstance(value, dict):
                init[key] = added_token({**value, "special": True})
            else:
                init[key] = value
    if ADDED_TOKENS_FILE in files:
        special = {str(init[key]) for key in cls.SPECIAL_TOKENS_ATTRIBUTES if init.get(key)}
        special.update(str(token) for token in init.get("extra_special_tokens") or [])
        for content, index in read_json(files[ADDED_TOKENS_FILE]).items():
            if type(index) is not int or index < 0:
                raise TokenizerError(f"{files[ADDED_TOKENS_FILE]} gives the token {content[:40]!r} the id "
                                     f"{str(index)[:40]!r}, not a token id; the file is damaged. Delete it, or "
                                     f"download or save the tokenizer again.")
            is_special = content in special
            added[int(index)] = AddedToken(content, normalized=not is_special, special=is_special)
    if "tokenizer_file" in files:
        for entry in read_json(files["tokenizer_file"]).get("added_tokens", []):
            added[int(entry["id"])] = added_token(entry)
    return added


def _config_to_save(tokenizer) -> dict:
    config = {key: value for key, value in copy.deepcopy(tokenizer.init_kwargs).items() if key not in _NOT_SAVED}
    for key in [*config, "model_max_length", "padding_side", "truncation_side", "clean_up_tokenization_spaces",
                *type(tokenizer).options]:
        if key in tokenizer.__dict__ or hasattr(type(tokenizer), key):
            value = getattr(tokenizer, key, None)
            if not callable(value):
                config[key] = value
    config = {key: str(value) if isinstance(value, AddedToken) else value for key, value in config.items()}
    config.update(tokenizer.special_tokens_map)
    if tokenizer.extra_special_tokens:
        config["additional_special_tokens"] = tokenizer.extra_special_tokens
    if tokenizer._add_bos_token:
        config["add_bos_token"] = True
    if tokenizer._add_eos_token:
        config["add_eos_token"] = True
    config["added_tokens_decoder"] = {str(index): token.__getstate__()
                                      for index, token in sorted(tokenizer.added_tokens_decoder.items())}
    config["tokenizer_class"] = type(tokenizer).saved_class_name()
    return config


def _write_json(path: str, data):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _save_templates(tokenizer, folder: str, prefix: str) -> list[str]:
    template = tokenizer.chat_template
    if template is None:
        return []
    if isinstance(template, str):
        template = {"default": template}
    written = []
    for name, text in template.items():
        if name == "default":
            path = os.path.join(folder, prefix + CHAT_TEMPLATE_FILE)
        else:
            if os.sep in name or "/" in name or name in (".", ".."):
                raise TokenizerError(f"Chat template name {name!r} is not a plain file name.")
            os.makedirs(os.path.join(folder, prefix + CHAT_TEMPLATE_DIR), exist_ok=True)
            path = os.path.join(folder, prefix + CHAT_TEMPLATE_DIR, f"{name}.jinja")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(path)
    return written


def save_folder(save_directory, filename_prefix: str | None = None, push_to_hub: bool = False) -> tuple[str, str]:
    """(folder, file-name prefix) for save_pretrained: the folder is created; a file path or push_to_hub is refused."""
    if push_to_hub:
        raise TokenizerError("push_to_hub is not supported: save the folder, then upload it with "
                             "`huggingface_hub.upload_folder`.")
    folder = os.fspath(save_directory)
    if os.path.isfile(folder):
        raise TokenizerError(f"{folder} is a file: save_pretrained needs a folder path.")
    os.makedirs(folder, exist_ok=True)
    return folder, f"{filename_prefix}-" if filename_prefix else ""


def save_config(tokenizer, folder: str, prefix: str) -> str:
    """Write tokenizer_config.json (special tokens included: transformers reads them there); returns its path."""
    config_path = os.path.join(folder, prefix + TOKENIZER_CONFIG_FILE)
    _write_json(config_path, _config_to_save(tokenizer))
    return config_path


def save_tokenizer(tokenizer, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
    """Write tokenizer_config.json, the chat templates and tokenizer.json, as transformers 5 does (in its order)."""
    folder, prefix = save_folder(save_directory, filename_prefix)
    config_path = save_config(tokenizer, folder, prefix)
    tokenizer_path = os.path.join(folder, prefix + TOKENIZER_FILE)
    backend = tokenizer.backend_tokenizer
    # write the truncation/padding the checkpoint came with, not those of the last call
    if tokenizer._json_truncation is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(**tokenizer._json_truncation)
    if tokenizer._json_padding is None:
        backend.no_padding()
    else:
        backend.enable_padding(**tokenizer._json_padding)
    backend.save(tokenizer_path)
    return (config_path, *_save_templates(tokenizer, folder, prefix), tokenizer_path)
