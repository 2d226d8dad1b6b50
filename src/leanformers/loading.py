"""from_pretrained for models: the config, the files, a meta-device build, then memory-mapped weights assigned in.

Weights the checkpoint has are never initialised; only the missing ones (a new head) are, and they are reported.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re

import torch
from torch import nn

from .checkpoint import as_dtype, checkpoint_dtype, find_weight_files, load_weight_file, rename_checkpoint_keys
from .configuration import PretrainedConfig
from .errors import CheckpointError, ConfigError
from .hub import HUB_KWARGS


logger = logging.getLogger("leanformers")

# keywords that Transformers accepts and that change nothing here
_IGNORED = ("low_cpu_mem_usage", "offload_folder", "offload_state_dict", "max_memory", "_from_auto", "_from_pipeline",
            "mirror", "variant", "tqdm_class", "key_mapping", "adapter_kwargs", "use_flash_attention_2")


def load_pretrained(cls, path, model_args, config, kwargs):
    kwargs = dict(kwargs)
    hub_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in HUB_KWARGS}
    hub_kwargs.pop("_commit_hash", None)
    legacy_token = hub_kwargs.pop("use_auth_token", None)
    hub_kwargs.setdefault("token", legacy_token)
    options = {k: kwargs.pop(k, None) for k in (
        "dtype", "torch_dtype", "device_map", "device", "state_dict", "output_loading_info",
        "ignore_mismatched_sizes", "use_safetensors", "attn_implementation", "gguf_file", "from_tf")}
    for key in _IGNORED:
        kwargs.pop(key, None)
    source = _config_source(path, config, options["gguf_file"])
    if options["gguf_file"]:  # config from the GGUF metadata, dequantised weights as the state dict
        from .gguf import load_gguf_checkpoint

        config, options["state_dict"] = load_gguf_checkpoint(cls, path, options["gguf_file"], config, hub_kwargs)
    config = _resolve_config(cls, path, config, hub_kwargs, kwargs)
    if options["attn_implementation"]:
        config._attn_implementation = options["attn_implementation"]

    state_dict = options["state_dict"]
    files = [] if state_dict is not None or options["from_tf"] else \
        find_weight_files(path, hub_kwargs, options["use_safetensors"])
    dtype = _resolve_dtype(options["dtype"] if options["dtype"] is not None else options["torch_dtype"],
                           config, files, state_dict)
    device = _resolve_device(options["device_map"], options["device"])
    config.dtype = dtype

    with torch.device("meta"), _skip_nn_init():
        model = _build(cls, config, model_args, source)
    if options["from_tf"]:  # tf_model.h5 read with h5py, its names mapped onto this model's keys
        from .tf_checkpoint import load_tf_state_dict

        state_dict = load_tf_state_dict(model, path, hub_kwargs, bool(options["ignore_mismatched_sizes"]))
    report = _load_weights(model, files, state_dict, dtype, device, bool(options["ignore_mismatched_sizes"]))
    model.tie_weights()
    model.eval()
    _log_report(model, path, report)
    if model.can_generate():
        _attach_generation_config(model, path, hub_kwargs)
    return (model, report) if options["output_loading_info"] else model


def _config_source(path, config, gguf_file) -> str:
    """Where the config comes from, for error messages: the config.json or GGUF file, or the config= argument."""
    if gguf_file:
        return str(gguf_file) if os.path.isfile(str(gguf_file)) else os.path.join(str(path), str(gguf_file))
    where = config if isinstance(config, (str, os.PathLike)) else getattr(config, "name_or_path", path)
    where = str(where or "")
    if not where:
        return "the config passed as config="
    return os.path.join(where, "config.json") if not where.endswith(".json") else where


def _build(cls, config, model_args, source: str):
    """The model on the meta device; a config whose values cannot build it is a ConfigError naming the source."""
    try:
        return cls(config, *model_args)
    except ConfigError as err:
        raise type(err)(f"{source}: {err}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError, OverflowError,
            RuntimeError, AssertionError) as err:  # torch asserts some arguments (padding_idx < num_embeddings)
        if isinstance(err, CheckpointError):
            raise
        raise ConfigError(f"The config in {source} cannot build {cls.__name__}: {type(err).__name__}: {err}. A "
                          f"setting has a wrong type or value; fix or re-download the file.") from None


@contextlib.contextmanager
def _skip_nn_init():
    """Make torch.nn.init a no-op while a model is built on the meta device: the values would be thrown away, and
    initialising meta tensors makes torch import its compiler stack (seconds, on the first load of a process)."""
    saved = {name: getattr(nn.init, name) for name in _NN_INIT}
    for name in _NN_INIT:
        setattr(nn.init, name, _keep)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


_NN_INIT = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
            "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "sparse_")


def _keep(tensor, *args, **kwargs):
    return tensor


def _resolve_config(cls, path, config, hub_kwargs, kwargs) -> PretrainedConfig:
    """The model's config: given, a path to one, or read beside the weights; then keyword overrides applied."""
    if isinstance(config, PretrainedConfig):
        config = copy.deepcopy(config)
        for key in [k for k in kwargs if hasattr(config, k) or k in ("num_labels", "id2label", "label2id")]:
            setattr(config, key, kwargs.pop(key))
    else:
        source = config if config is not None else path
        if config is None and os.path.isfile(str(path)):
            source = os.path.dirname(os.path.abspath(str(path)))
        config_dict, _ = cls.config_class.get_config_dict(source, **hub_kwargs)
        config, kwargs_left = cls.config_class.from_dict(config_dict, return_unused_kwargs=True, **kwargs)
        kwargs.clear()
        kwargs.update(kwargs_left)
        config.name_or_path = str(path)
    if kwargs:
        raise TypeError(f"{cls.__name__}.from_pretrained got unexpected keyword arguments {sorted(kwargs)}; they are "
                        f"neither loading options nor attributes of {type(config).__name__}.")
    return config


def _resolve_dtype(dtype, config, files, state_dict) -> torch.dtype:
    if dtype is None or dtype == "auto":  # Transformers 5 reads the dtype of the checkpoint by default
        dtype = config.dtype
        if dtype is None and state_dict is not None:
            dtype = next((t.dtype for t in state_dict.values() if t.is_floating_point()), None)
        if dtype is None:
            dtype = checkpoint_dtype(files)
    return as_dtype(dtype) or torch.get_default_dtype()


def _resolve_device(device_map, device) -> torch.device:
    target = device if device is not None else device_map
    if isinstance(target, dict):
        placements = set(target.values())
        if len(placements) != 1:
            raise ConfigError(f"device_map={target} splits the model over several devices; only a single "
                              f"device is supported. Use device_map='auto' or one device.")
        target = placements.pop()
    if target is None or target == "cpu":
        return torch.device("cpu")
    if target == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(target, int):
        return torch.device("cuda", target)
    return torch.device(target)


def _load_weights(model, files, state_dict, dtype, device, ignore_mismatched) -> dict:
    report = {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    state = {}
    for file in files or [None]:
        part = load_weight_file(file) if file is not None else dict(state_dict)
        state.update(_fit_prefix(model, rename_checkpoint_keys(type(model), part)))
    expected = model.state_dict(keep_vars=True)
    _restore_tied_sources(model, state)
    for key in [k for k in state if k not in expected]:
        state.pop(key)
        if not _matches_any(key, model._keys_to_ignore_on_load_unexpected):
            report["unexpected_keys"].append(key)
    for key, tensor in list(state.items()):
        want = expected[key]
        if tuple(tensor.shape) != tuple(want.shape):
            if not ignore_mismatched:
                raise CheckpointError(
                    f"Weight '{key}' has shape {tuple(tensor.shape)} in the checkpoint but {tuple(want.shape)} in "
                    f"{type(model).__name__}. The config does not match the weights; fix the config, or pass "
                    f"ignore_mismatched_sizes=True to re-initialise this weight (e.g. a new num_labels).")
            report["mismatched_keys"].append((key, tuple(tensor.shape), tuple(want.shape)))
            state.pop(key)
            continue
        cast = dtype if tensor.is_floating_point() and want.is_floating_point() else tensor.dtype
        state[key] = tensor.to(device=device, dtype=cast)
    model.load_state_dict(state, strict=False, assign=True)
    tied = model.tied_weight_pairs()  # a tied copy is missing only when its source is missing too
    report["missing_keys"] = [k for k in expected if k not in state and tied.get(k) not in state
                              and not _matches_any(k, model._keys_to_ignore_on_load_missing)]
    _materialize_missing(model, dtype, device)
    return report


def _fit_prefix(model, state: dict) -> dict:
    """Add or strip `base_model_prefix` so a base checkpoint loads into a head model and the other way round."""
    prefix = model.base_model_prefix
    if not prefix:
        return state
    dotted = prefix + "."
    has_prefixed = any(k.startswith(dotted) for k in state)
    if hasattr(model, prefix) and not has_prefixed:
        base_keys = set(getattr(model, prefix).state_dict(keep_vars=True))
        return {(dotted + k if k in base_keys else k): v for k, v in state.items()}
    if not hasattr(model, prefix) and has_prefixed:
        return {k[len(dotted):] if k.startswith(dotted) else k: v for k, v in state.items()}
    return state


def _restore_tied_sources(model, state: dict):
    """A checkpoint may hold only the tied copy (e.g. the decoder) and not its source: load it as the source."""
    for target, source in model.tied_weight_pairs().items():
        if source not in state and target in state:
            state[source] = state[target]
        state.pop(target, None)


def _materialize_missing(model: nn.Module, dtype, device):
    """Give every tensor still on the meta device real storage and initialise it, keeping its loaded siblings.

    While a module's `_init_weights` runs, its loaded tensors are set aside behind placeholders: they are neither
    re-initialised nor emptied in place (as `Module.to_empty` would do to a loaded sibling of a missing tensor).
    """
    model.tie_weights()  # tied copies of loaded weights are loaded, not missing
    for module in model.modules():
        own = {n: t for n, t in (*module._parameters.items(), *module._buffers.items()) if t is not None}
        if not any(t.is_meta for t in own.values()):
            continue
        loaded = {name: t for name, t in own.items() if not t.is_meta}
        for name, tensor in own.items():
            is_param = name in module._parameters
            # torch.empty, not empty_like: empty_like of a meta tensor makes torch import sympy (a second or more)
            fresh = torch.empty(tensor.shape, device=device,
                                dtype=dtype if is_param and tensor.is_floating_point() else tensor.dtype)
            if is_param:
                module._parameters[name] = nn.Parameter(fresh, requires_grad=tensor.requires_grad)
            else:
                module._buffers[name] = fresh
        model._init_weights(module)
        for name, tensor in loaded.items():
            (module._parameters if name in module._parameters else module._buffers)[name] = tensor
    model.tie_weights()


def _matches_any(key: str, patterns) -> bool:
    return any(re.search(p, key) for p in patterns)


def _log_report(model, path, report):
    name = type(model).__name__
    if report["missing_keys"]:
        logger.warning(f"Some weights of {name} were not in the checkpoint at {path} and are newly initialized: "
                       f"{report['missing_keys']}\nYou should probably train this model on a downstream task before "
                       f"using it for predictions and inference.")
    if report["mismatched_keys"]:
        shapes = "\n".join(f"- {k}: checkpoint {a}, model {b}" for k, a, b in report["mismatched_keys"])
        logger.warning(f"Some weights of {name} were re-initialized because their shapes differ:\n{shapes}")
    if report["unexpected_keys"]:
        logger.info(f"Weights of the checkpoint at {path} not used by {name}: {report['unexpected_keys']}")


def _attach_generation_config(model, path, hub_kwargs):
    from .generation.config import GenerationConfig

    try:
        model.generation_config = GenerationConfig.from_pretrained(path, **hub_kwargs)
    except OSError:
        model.generation_config = GenerationConfig.from_model_config(model.config)
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        if isinstance(err, ConfigError) and "generation_config.json" in str(err):
            raise
        raise ConfigError(f"generation_config.json of {path} holds a setting of the wrong type or value "
                          f"({type(err).__name__}: {err}). Fix or delete the file.") from None
