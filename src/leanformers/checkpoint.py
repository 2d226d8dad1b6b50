"""Weight files on disk: find them, read them (memory-mapped), write them (sharded safetensors)."""

from __future__ import annotations

import json
import os
import pickle
import re

import torch

from .errors import CheckpointError, ConfigError, ResourceNotFoundError
from .hub import resolve_file

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
PT_INDEX = "pytorch_model.bin.index.json"


def find_weight_files(path_or_repo, hub_kwargs: dict, use_safetensors=None) -> list[str]:
    """Local paths of every weight file of a checkpoint, safetensors first, following `*.index.json` shards."""
    name = str(path_or_repo)
    if os.path.isfile(name):
        return [name]
    candidates = [(SAFE_WEIGHTS, False), (SAFE_INDEX, True)]
    if use_safetensors is not True:
        candidates += [(PT_WEIGHTS, False), (PT_INDEX, True)]
    if use_safetensors is False:
        candidates = candidates[2:]
    for filename, is_index in candidates:
        found = resolve_file(name, filename, missing_ok=True, **hub_kwargs)
        if found is None:
            continue
        if not is_index:
            return [found]
        shard_names = sorted(set(_read_index(found)["weight_map"].values()))
        return [resolve_file(name, shard, **hub_kwargs) for shard in shard_names]
    if os.path.isdir(name) and os.path.isfile(os.path.join(name, hub_kwargs.get("subfolder") or "", "tf_model.h5")):
        raise ResourceNotFoundError(f"{name} has only TensorFlow weights (tf_model.h5): pass from_tf=True to load "
                                    f"them (TensorFlow itself is not needed).")
    wanted = ", ".join(f for f, _ in candidates)
    raise ResourceNotFoundError(f"{name} has no weights: none of {wanted} was found. Pass the folder or repo id "
                                f"of a saved model (or the path of a weights file with config=...).")


def _read_index(path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{path} is not a valid weight index (JSON): {err}. Re-download the checkpoint.") \
            from None
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise CheckpointError(f"{path} has no 'weight_map'; it is not a sharded-checkpoint index. Re-download "
                              f"the checkpoint.")
    if not index["weight_map"]:
        raise CheckpointError(f"{path} lists no weights in its 'weight_map'; the index is damaged. Re-download the "
                              f"checkpoint.")
    for key, shard in index["weight_map"].items():
        if not isinstance(shard, str) or not shard:
            raise CheckpointError(f"{path} maps the weight {key!r} to {shard!r}, not a file name; the index is "
                                  f"damaged. Re-download the checkpoint.")
    return index


def load_weight_file(path: str) -> dict[str, torch.Tensor]:
    """Tensors of one weights file. safetensors files are memory-mapped; .bin files load with weights_only=True."""
    if path.endswith(".safetensors"):
        return _load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        raise _unsafe_pickle(path, err) from None
    except RuntimeError:
        try:  # legacy (non-zip) pickles cannot be memory-mapped
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise _unsafe_pickle(path, err) from None
        except Exception as err:
            raise _damaged(path, err) from err
    except Exception as err:
        raise _damaged(path, err) from err


def _unsafe_pickle(path, err) -> CheckpointError:
    """A pickle that names Python objects beyond tensors; torch's own message is not repeated, as it suggests
    loading the file with weights_only=False, which would run them."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    what = f" ({found.group(1)})" if found else ""
    return CheckpointError(
        f"{path} contains Python objects{what} that leanformers will not run: a weights file must hold tensors "
        f"only. Ask the publisher for a model.safetensors file, or convert it yourself on an isolated machine "
        f"you trust (load it there, then save_pretrained(..., safe_serialization=True)).")


def _load_safetensors(path: str) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # safetensors raises its own error types for bad headers and short files
        raise _damaged(path, err) from err


def _damaged(path, err) -> CheckpointError:
    return CheckpointError(f"Cannot read weights file {path}: {err}. The file is damaged or truncated; "
                           f"delete it and download it again.")


def read_safetensors_dtype(path: str):
    """The floating dtype stored in a safetensors file (from its header only), or None."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            for key in f.keys():
                dtype = f.get_slice(key).get_dtype()
                if dtype in ("F32", "F16", "BF16", "F64"):
                    return {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                            "F64": torch.float64}[dtype]
    except Exception as err:  # safetensors raises its own error types for bad headers and short files
        raise _damaged(path, err) from None
    return None


# ---------------------------------------------------------------------- saving
def parse_size(size) -> int:
    """'5GB' / '500MB' / '200KiB' / int -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(I?)B\s*", str(size).upper())
    if not match:
        raise ValueError(f"max_shard_size={size!r} is not a size such as '5GB' or '500MB'.")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit or " "))


def save_state_dict(state: dict[str, torch.Tensor], folder: str, max_shard_size="5GB", safe_serialization=True):
    """Write `state` as one file or as shards plus an index, like Transformers names them."""
    limit = parse_size(max_shard_size)
    shards, current, current_size = [], {}, 0
    for key, tensor in state.items():
        size = tensor.numel() * tensor.element_size()
        if current and current_size + size > limit:
            shards.append(current)
            current, current_size = {}, 0
        current[key] = tensor.contiguous()
        current_size += size
    shards.append(current)
    base, ext = (SAFE_WEIGHTS, ".safetensors") if safe_serialization else (PT_WEIGHTS, ".bin")
    stem = base[: -len(ext)]
    names = [base] if len(shards) == 1 else [f"{stem}-{i + 1:05d}-of-{len(shards):05d}{ext}"
                                             for i in range(len(shards))]
    _remove_stale_weights(folder, keep=set(names))
    for name, shard in zip(names, shards):
        _write(shard, os.path.join(folder, name), safe_serialization)
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": {key: name for name, shard in zip(names, shards) for key in shard}}
        with open(os.path.join(folder, base + ".index.json"), "w", encoding="utf-8") as f:
            json.dump(index, f, indent=2, sort_keys=True)


def _write(shard, path, safe_serialization):
    if safe_serialization:
        from safetensors.torch import save_file

        save_file(shard, path, metadata={"format": "pt"})
    else:
        torch.save(shard, path)


def _remove_stale_weights(folder, keep: set[str]):
    """Old shards of another layout would otherwise be picked up next to the new files."""
    pattern = re.compile(r"^(model|pytorch_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?$")
    for name in os.listdir(folder):
        if pattern.match(name) and name not in keep:
            os.remove(os.path.join(folder, name))


LEGACY_RENAMES = ((r"(?<=LayerNorm)\.gamma$", ".weight"), (r"(?<=LayerNorm)\.beta$", ".bias"))


def rename_checkpoint_keys(model_cls, state: dict) -> dict:
    """Apply the legacy renames and the class's own (regex, replacement) table to checkpoint keys."""
    rules = [(re.compile(p), r) for p, r in (*LEGACY_RENAMES, *model_cls._checkpoint_renames)]
    if not rules:
        return state
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def as_dtype(dtype):
    """A torch dtype from a dtype or its name ("bfloat16", "torch.float16"); None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).replace("torch.", "")
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ConfigError(f"dtype={dtype!r} is not a torch dtype; use e.g. torch.float32, 'bfloat16' or 'auto'.")
    return value


def checkpoint_dtype(files: list[str]):
    """Floating dtype of the first weights file (read from its header when it is safetensors)."""
    if files and files[0].endswith(".safetensors"):
        return read_safetensors_dtype(files[0])
    if files:
        for tensor in load_weight_file(files[0]).values():
            if tensor.is_floating_point():
                return tensor.dtype
    return None
