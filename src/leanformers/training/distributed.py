"""Several processes (torchrun): DDP / FSDP wrapping, gathering evaluation outputs, full state dicts for saving."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier():
    if is_distributed():
        dist.barrier()


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / FSDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FullyShardedDataParallel

    return isinstance(model, FullyShardedDataParallel)


def wrap_model(model: nn.Module, args) -> nn.Module:
    """DDP (or FSDP when `args.fsdp` is set) around `model` when several processes run; the model itself otherwise."""
    if args.world_size <= 1:
        if args.fsdp:
            raise ConfigError("fsdp=... shards the model across processes: launch with torchrun "
                              "--nproc_per_node=N (N >= 2), or drop the fsdp argument.")
        return model
    if args.fsdp:
        return _wrap_fsdp(model, args)
    device_ids = [args.device.index] if args.device.type == "cuda" else None
    kwargs = {"find_unused_parameters": True if args.ddp_find_unused_parameters is None
              else args.ddp_find_unused_parameters}
    if args.ddp_bucket_cap_mb is not None:
        kwargs["bucket_cap_mb"] = args.ddp_bucket_cap_mb
    if args.ddp_broadcast_buffers is not None:
        kwargs["broadcast_buffers"] = args.ddp_broadcast_buffers
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **kwargs)


def _wrap_fsdp(model: nn.Module, args) -> nn.Module:
    from functools import partial

    from torch.distributed.fsdp import CPUOffload, FullyShardedDataParallel, ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy, size_based_auto_wrap_policy

    options, config = set(args.fsdp), args.fsdp_config
    strategy = next((getattr(ShardingStrategy, o.upper()) for o in ("full_shard", "shard_grad_op", "no_shard",
                                                                     "hybrid_shard") if o in options),
                    ShardingStrategy.FULL_SHARD)
    policy = None
    if "auto_wrap" in options:
        names = config.get("transformer_layer_cls_to_wrap") or getattr(model, "_no_split_modules", None)
        if names:
            names = {names} if isinstance(names, str) else set(names)
            classes = {type(m) for m in model.modules() if type(m).__name__ in names}
            if not classes:
                raise ConfigError(f"fsdp_config transformer_layer_cls_to_wrap={sorted(names)} matches no module "
                                  f"of {type(model).__name__}.")
            policy = ModuleWrapPolicy(classes)
        else:
            policy = partial(size_based_auto_wrap_policy, min_num_params=int(config.get("min_num_params", 1e8)))
    mixed = None
    if args.bf16 or args.fp16:
        from torch.distributed.fsdp import MixedPrecision

        dtype = torch.bfloat16 if args.bf16 else torch.float16
        mixed = MixedPrecision(param_dtype=dtype, reduce_dtype=dtype, buffer_dtype=dtype)
    return FullyShardedDataParallel(
        model, sharding_strategy=strategy, auto_wrap_policy=policy, mixed_precision=mixed,
        cpu_offload=CPUOffload(offload_params=True) if "offload" in options else None,
        device_id=args.device if args.device.type == "cuda" else torch.device("cpu"), use_orig_params=True)


@contextlib.contextmanager
def full_state_dict_type(model: nn.Module):
    """Inside: FSDP state_dict() / optim_state_dict() return full (unsharded) tensors, gathered on rank 0."""
    from torch.distributed.fsdp import (FullOptimStateDictConfig, FullStateDictConfig, FullyShardedDataParallel,
                                        StateDictType)

    # offloading a CPU model "to the CPU" frees the gathered tensors under the copies (a crash): only offload GPU
    offload = next(model.parameters()).device.type == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the FSDP1 state-dict API is marked for replacement
        context = FullyShardedDataParallel.state_dict_type(
            model, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=offload, rank0_only=True),
            FullOptimStateDictConfig(offload_to_cpu=offload, rank0_only=True))
        context.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            context.__exit__(None, None, None)


def model_state_dict(model: nn.Module) -> dict | None:
    """Full weights of a possibly-wrapped model (every rank must call it under FSDP; None means 'use the model')."""
    if is_fsdp(model):
        with full_state_dict_type(model):
            return model.state_dict()
    return None


def optimizer_state_dict(model: nn.Module, optimizer) -> dict:
    """The optimiser state, gathered in full under FSDP (collective: every rank calls it)."""
    if is_fsdp(model):
        from torch.distributed.fsdp import FullyShardedDataParallel

        with full_state_dict_type(model):
            return FullyShardedDataParallel.optim_state_dict(model, optimizer)
    return optimizer.state_dict()


def load_optimizer_state(model: nn.Module, optimizer, state: dict):
    """Load a full optimiser state (sharding it again under FSDP)."""
    if is_fsdp(model):
        from torch.distributed.fsdp import FullyShardedDataParallel

        with full_state_dict_type(model):
            state = FullyShardedDataParallel.optim_state_dict_to_load(model, optimizer, state)
    optimizer.load_state_dict(state)


def load_full_state_dict(model: nn.Module, checkpoint: str):
    """Load the weights saved in `checkpoint` into an FSDP-wrapped model (every rank reads the file)."""
    from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel, StateDictType

    from ..checkpoint import find_weight_files, load_weight_file

    state = {}
    for path in find_weight_files(checkpoint, {"local_files_only": True}):
        state.update(load_weight_file(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with FullyShardedDataParallel.state_dict_type(model, StateDictType.FULL_STATE_DICT,
                                                      FullStateDictConfig(rank0_only=False)):
            model.load_state_dict(state, strict=False)


def clip_grad_norm(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip all gradients to `max_norm` and return the norm before clipping (inf: measure only)."""
    if is_fsdp(model):
        return model.clip_grad_norm_(max_norm)
    return nn.utils.clip_grad_norm_([p for p in model.parameters()], max_norm)


def mean_across_processes(value: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


def sum_across_processes(value):
    if not is_distributed():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_arrays(array: np.ndarray):
    """Every rank's array (same dtype, any leading/trailing sizes), in rank order, on every rank."""
    if not is_distributed():
        return [array]
    # NCCL only moves GPU tensors
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    shape = torch.tensor(tensor.shape, dtype=torch.long, device=device)
    shapes = [torch.zeros_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    biggest = torch.stack(shapes).max(dim=0).values.tolist()
    padded = tensor.new_zeros(biggest)
    padded[tuple(slice(0, s) for s in tensor.shape)] = tensor
    pieces = [torch.zeros_like(padded) for _ in shapes]
    dist.all_gather(pieces, padded)
    return [piece[tuple(slice(0, s) for s in size.tolist())].cpu().numpy() for piece, size in zip(pieces, shapes)]
