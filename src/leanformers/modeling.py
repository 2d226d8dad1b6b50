"""PreTrainedModel: build on the meta device, assign memory-mapped weights, tie, save like Transformers."""

from __future__ import annotations

import copy
import logging
import os

import torch
from torch import nn

from .checkpoint import as_dtype, find_weight_files, save_state_dict
from .configuration import PretrainedConfig
from .errors import CheckpointError, ConfigError, refuse_remote_code
from .hub import HUB_KWARGS

logger = logging.getLogger("leanformers")

# model inputs that are tensors of ids or masks; a Python list there is a forgotten return_tensors="pt"
_TENSOR_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "decoder_input_ids",
                  "decoder_attention_mask", "labels")


def _refuse_python_lists(model_name: str, first_args: tuple, kwargs: dict):
    named = [(name, kwargs.get(name)) for name in _TENSOR_INPUTS]
    for name, value in [("the first argument", arg) for arg in first_args] + named:
        if isinstance(value, (list, tuple)):
            raise TypeError(f"{model_name} got a Python {type(value).__name__} as {name}; models take tensors. "
                            f"Call the tokenizer with return_tensors=\"pt\" (or wrap the ids in torch.tensor).")


class PreTrainedModel(nn.Module):
    """Base of every model: loading, saving, weight tying and initialisation of weights a checkpoint lacks."""

    config_class = PretrainedConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    # {target parameter: source parameter}, tied when config.tie_word_embeddings is true
    _tied_weights_keys: dict[str, str] = {}
    # (regex, replacement) applied to checkpoint keys before loading; old names -> attribute paths
    _checkpoint_renames: tuple = ()
    # regexes of checkpoint keys dropped without a report (e.g. buffers older versions saved)
    _keys_to_ignore_on_load_unexpected: tuple = ()
    _keys_to_ignore_on_load_missing: tuple = ()

    def __init__(self, config: PretrainedConfig, *args, **kwargs):
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise ConfigError(f"{type(self).__name__} needs a PretrainedConfig, got {type(config).__name__}. "
                              f"Use {type(self).__name__}.from_pretrained(path) to load a checkpoint.")
        self.config = config
        self.name_or_path = config.name_or_path

    def post_init(self):
        """Called at the end of each model's __init__: prune the heads config.pruned_heads lists, initialise all
        weights, then tie them.

        A build on the meta device (from_pretrained) skips the initialisation: those tensors have no storage, and
        the loader initialises only the weights the checkpoint lacks.
        """
        if getattr(self.config, "pruned_heads", None):  # before the weights are read: checkpoints hold pruned shapes
            self.prune_heads(self.config.pruned_heads)
        first = next(self.parameters(), None)
        if first is None or not first.is_meta:
            with torch.no_grad():
                self.apply(self._init_weights)
        self.tie_weights()

    def prune_heads(self, heads_to_prune: dict[int, list[int]]):
        """Removes attention heads: {layer index: [head numbers]}. The heads gone are recorded in
        config.pruned_heads (saved with the model), so that loading the saved model prunes the same heads."""
        base = self.base_model
        if not hasattr(base, "_prune_heads"):
            raise NotImplementedError(f"{type(self).__name__} cannot prune attention heads (prune_heads, "
                                      f"config.pruned_heads); silence heads with head_mask instead, and remove "
                                      f"pruned_heads from the config.")
        pruned = dict(getattr(self.config, "pruned_heads", None) or {})
        base._prune_heads({int(layer): list(heads) for layer, heads in heads_to_prune.items()})
        for layer, heads in heads_to_prune.items():
            pruned[int(layer)] = sorted(set(pruned.get(int(layer), [])) | set(heads))
        self.config.pruned_heads = pruned

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                module.weight.fill_(1.0)
            if module.bias is not None:
                module.bias.zero_()

    def __call__(self, *args, **kwargs):
        _refuse_python_lists(type(self).__name__, args[:1], kwargs)
        return super().__call__(*args, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    @classmethod
    def can_generate(cls) -> bool:
        """True for classes that inherit generate() (the generation mixin)."""
        return any(base.__name__ == "GenerationMixin" for base in cls.__mro__)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)} if exclude_embeddings else set()
        return sum(p.numel() for p in self.parameters()
                   if id(p) not in skip and (p.requires_grad or not only_trainable))

    # ------------------------------------------------------------------ embeddings and tying
    def get_input_embeddings(self) -> nn.Module:
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} does not define get_input_embeddings().")
        return base.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        base = self.base_model
        if base is self:
            raise NotImplementedError(f"{type(self).__name__} does not define set_input_embeddings().")
        base.set_input_embeddings(value)

    def get_output_embeddings(self):
        return None

    def tied_weight_pairs(self) -> dict[str, str]:
        """{target: source} parameter names that share storage in this model."""
        return dict(self._tied_weights_keys) if getattr(self.config, "tie_word_embeddings", False) else {}

    def tie_weights(self):
        # torchscript=True: a traced module cannot share a parameter between two modules, so the copy is a clone
        untie = getattr(self.config, "torchscript", False)
        for target, source in self.tied_weight_pairs().items():
            parent_name, _, attr = target.rpartition(".")
            weight = self.get_parameter(source)
            setattr(self.get_submodule(parent_name), attr, nn.Parameter(weight.clone()) if untie else weight)

    def resize_token_embeddings(self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True):
        from .resizing import resize_token_embeddings

        return resize_token_embeddings(self, new_num_tokens, pad_to_multiple_of, mean_resizing)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs):
        dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
        config = copy.deepcopy(config)
        config.update(kwargs)
        model = cls(config)
        return model.to(as_dtype(dtype)) if dtype not in (None, "auto") else model

    _from_config = from_config

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, **kwargs):
        """Load a checkpoint (folder, repo id, or weights file) into this class; see Transformers' keywords.
        `quantize="int8"` (or "int8-dynamic") quantizes the loaded float32 model for CPU inference (see quantize())."""
        from .allocator import keep_freed_memory
        from .loading import load_pretrained

        keep_freed_memory()
        if kwargs.pop("trust_remote_code", False):
            refuse_remote_code()
        quantize = kwargs.pop("quantize", None)
        if quantize is None:
            return load_pretrained(cls, pretrained_model_name_or_path, model_args, config, kwargs)
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32  # the int8 weights are made from float32 ones, whatever was saved
        loaded = load_pretrained(cls, pretrained_model_name_or_path, model_args, config, kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.quantize(quantize)
        return loaded

    def quantize(self, mode: str = "int8"):
        """Quantize this float32 CPU model in place for inference and return it: "int8" (weight-only int8) or
        "int8-dynamic" (int8 weights and activations); see leanformers/quantize.py. It can then no longer be trained,
        saved, moved or cast."""
        from .quantize import quantize_model

        return quantize_model(self, mode)

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory, state_dict=None, safe_serialization: bool = True,
                        max_shard_size="5GB", is_main_process: bool = True, **_ignored):
        """Write config.json and the weights (sharded above `max_shard_size`) in a layout Transformers loads."""
        if os.path.isfile(save_directory):
            raise CheckpointError(f"save_pretrained expects a folder, but {save_directory} is a file.")
        if getattr(self, "quantization_mode", None) and state_dict is None:
            self.state_dict()  # a quantized layer refuses, naming the fix, before any file is written
        if not is_main_process:
            return
        os.makedirs(save_directory, exist_ok=True)
        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.dtype = str(self.dtype).replace("torch.", "")
        config.save_pretrained(save_directory)
        generation_config = getattr(self, "generation_config", None)
        if generation_config is not None and self.can_generate():
            generation_config.save_pretrained(save_directory)
        state = self._deduplicated_state(state_dict if state_dict is not None else self.state_dict())
        save_state_dict(state, save_directory, max_shard_size=max_shard_size, safe_serialization=safe_serialization)

    def _deduplicated_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Drop tied copies (safetensors refuses shared storage); keep the source name like Transformers."""
        targets = set(self.tied_weight_pairs())
        kept, seen = {}, {}
        for key in sorted(state, key=lambda k: k in targets):
            tensor = state[key].detach()
            ident = (tensor.data_ptr(), tensor.shape, tensor.stride()) if tensor.device.type != "meta" else key
            if ident in seen and key in targets:
                continue
            seen[ident] = key
            kept[key] = tensor.cpu() if tensor.device.type != "cpu" else tensor
        return {k: kept[k] for k in state if k in kept}


__all__ = ["PreTrainedModel", "HUB_KWARGS", "find_weight_files"]
