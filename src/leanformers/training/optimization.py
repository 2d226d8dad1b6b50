"""Learning-rate schedules (the curves of Transformers, as torch LambdaLR) and the default optimiser set-up."""

from __future__ import annotations

import math
import re
from functools import partial

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from ..errors import ConfigError
from .arguments import OptimizerNames, SchedulerType


# ---------------------------------------------------------------------- multipliers of the initial learning rate
def _warmup(step: int, warmup: int) -> float:
    return float(step) / float(max(1, warmup))


def _constant(_step: int = 0) -> float:
    return 1.0


def _constant_with_warmup(step: int, *, num_warmup_steps: int) -> float:
    return float(step) / float(max(1.0, num_warmup_steps)) if step < num_warmup_steps else 1.0


def _linear(step: int, *, num_warmup_steps: int, num_training_steps: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return max(0.0, float(num_training_steps - step) / float(max(1, num_training_steps - num_warmup_steps)))


def _progress(step, num_warmup_steps, num_training_steps) -> float:
    return float(step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))


def _cosine(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float,
            min_lr_rate: float = 0.0) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * _progress(step, num_warmup_steps,
                                                                                  num_training_steps)))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def _cosine_hard_restarts(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    progress = _progress(step, num_warmup_steps, num_training_steps)
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * progress) % 1.0))))


def _polynomial(step: int, *, num_warmup_steps: int, num_training_steps: int, lr_end: float, power: float,
                lr_init: float) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    if step > num_training_steps:
        return lr_end / lr_init  # LambdaLR multiplies by the initial lr
    remaining = 1 - (step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return ((lr_init - lr_end) * remaining ** power + lr_end) / lr_init


def _inverse_sqrt(step: int, *, num_warmup_steps: int, timescale: int) -> float:
    if step < num_warmup_steps:
        return _warmup(step, num_warmup_steps)
    return 1.0 / math.sqrt((step + timescale - num_warmup_steps) / timescale)


def _cosine_warmup_min_lr(step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float,
                          min_lr_rate: float, warmup_lr_rate: float | None) -> float:
    step, warm, total = float(step), float(num_warmup_steps), float(num_training_steps)
    if step < warm:
        if warmup_lr_rate is None:
            return (step + 1.0) / max(1.0, warm)
        return warmup_lr_rate + (1.0 - warmup_lr_rate) * step / max(1, warm - 1)
    progress = (step - warm + 1.0) / max(1.0, total - warm)
    factor = 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def _shape(kind: str, progress: float, num_cycles: float, rising: bool) -> float:
    if kind == "linear":
        return progress if rising else 1.0 - progress
    if kind == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * progress)) if rising else \
            0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return 1.0 - math.sqrt(1.0 - progress) if rising else 1.0 - math.sqrt(progress)  # "1-sqrt"


def _warmup_stable_decay(step: int, *, num_warmup_steps: int, num_stable_steps: int, num_decay_steps: int,
                         warmup_type: str, decay_type: str, min_lr_ratio: float, num_cycles: float) -> float:
    if step < num_warmup_steps:
        factor = _shape(warmup_type, float(step) / float(max(1, num_warmup_steps)), num_cycles, rising=True)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < num_warmup_steps + num_stable_steps:
        return 1.0
    if step < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(step - num_warmup_steps - num_stable_steps) / float(max(1, num_decay_steps))
        factor = _shape(decay_type, progress, num_cycles, rising=False)
        return max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


# ---------------------------------------------------------------------- public schedule constructors
def get_constant_schedule(optimizer, last_epoch: int = -1):
    """Keep the optimiser's learning rate."""
    return LambdaLR(optimizer, _constant, last_epoch=last_epoch)


def get_constant_schedule_with_warmup(optimizer, num_warmup_steps: int, last_epoch: int = -1):
    """Rise linearly from 0 over `num_warmup_steps`, then stay constant."""
    return LambdaLR(optimizer, partial(_constant_with_warmup, num_warmup_steps=num_warmup_steps), last_epoch)


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch: int = -1):
    """Rise linearly from 0 over the warm-up, then fall linearly to 0 at `num_training_steps`."""
    return LambdaLR(optimizer, partial(_linear, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps), last_epoch)


def get_cosine_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int,
                                    num_cycles: float = 0.5, last_epoch: int = -1):
    """Linear warm-up, then a cosine from the initial lr down to 0 (`num_cycles` waves; 0.5 = half a cosine)."""
    return LambdaLR(optimizer, partial(_cosine, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, num_cycles=num_cycles), last_epoch)


def get_cosine_with_hard_restarts_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int,
                                                       num_cycles: int = 1, last_epoch: int = -1):
    """Linear warm-up, then `num_cycles` cosine decays to 0, each restarting at the initial lr."""
    return LambdaLR(optimizer, partial(_cosine_hard_restarts, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, num_cycles=num_cycles), last_epoch)


def get_polynomial_decay_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, lr_end=1e-7,
                                              power=1.0, last_epoch: int = -1):
    """Linear warm-up, then a polynomial decay (of `power`) from the initial lr to `lr_end`."""
    lr_init = optimizer.defaults["lr"]
    if not lr_init > lr_end:
        raise ConfigError(f"lr_end ({lr_end}) must be smaller than the initial learning rate ({lr_init}).")
    return LambdaLR(optimizer, partial(_polynomial, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, lr_end=lr_end, power=power,
                                       lr_init=lr_init), last_epoch)


def get_inverse_sqrt_schedule(optimizer, num_warmup_steps: int, timescale: int | None = None,
                              last_epoch: int = -1):
    """Linear warm-up, then decay as 1/sqrt(step) on a `timescale` (default: the warm-up length)."""
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    return LambdaLR(optimizer, partial(_inverse_sqrt, num_warmup_steps=num_warmup_steps, timescale=timescale),
                    last_epoch=last_epoch)


def get_reduce_on_plateau_schedule(optimizer, **kwargs):
    """torch's ReduceLROnPlateau; the Trainer steps it with the evaluation metric."""
    return ReduceLROnPlateau(optimizer, **kwargs)


def _min_lr_rate(optimizer, min_lr, min_lr_rate):
    if min_lr is not None and min_lr_rate is not None:
        raise ConfigError("Set only one of min_lr and min_lr_rate in lr_scheduler_kwargs.")
    if min_lr is not None:
        return min_lr / optimizer.defaults["lr"]
    if min_lr_rate is None:
        raise ConfigError("This schedule needs min_lr or min_lr_rate in lr_scheduler_kwargs, "
                          "e.g. lr_scheduler_kwargs={'min_lr_rate': 0.1}.")
    return min_lr_rate


def get_cosine_with_min_lr_schedule_with_warmup(optimizer, num_warmup_steps: int, num_training_steps: int,
                                                num_cycles: float = 0.5, last_epoch: int = -1,
                                                min_lr: float | None = None, min_lr_rate: float | None = None):
    """Like the cosine schedule, but decaying to `min_lr` (or `min_lr_rate` x the initial lr) instead of 0."""
    rate = _min_lr_rate(optimizer, min_lr, min_lr_rate)
    return LambdaLR(optimizer, partial(_cosine, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, num_cycles=num_cycles,
                                       min_lr_rate=rate), last_epoch)


def get_cosine_with_min_lr_schedule_with_warmup_lr_rate(optimizer, num_warmup_steps: int, num_training_steps: int,
                                                        num_cycles: float = 0.5, last_epoch: int = -1,
                                                        min_lr: float | None = None,
                                                        min_lr_rate: float | None = None,
                                                        warmup_lr_rate: float | None = None):
    """Cosine to a minimum lr whose warm-up starts at `warmup_lr_rate` (or one step's worth) rather than 0."""
    rate = _min_lr_rate(optimizer, min_lr, min_lr_rate)
    return LambdaLR(optimizer, partial(_cosine_warmup_min_lr, num_warmup_steps=num_warmup_steps,
                                       num_training_steps=num_training_steps, num_cycles=num_cycles,
                                       min_lr_rate=rate, warmup_lr_rate=warmup_lr_rate), last_epoch)


def get_wsd_schedule(optimizer, num_warmup_steps: int, num_decay_steps: int, num_training_steps: int | None = None,
                     num_stable_steps: int | None = None, warmup_type: str = "linear", decay_type: str = "cosine",
                     min_lr_ratio: float = 0, num_cycles: float = 0.5, last_epoch: int = -1):
    """Warm-up, stable, decay: three phases ('linear', 'cosine' or '1-sqrt' shapes), ending at `min_lr_ratio`."""
    if num_training_steps is None and num_stable_steps is None:
        raise ConfigError("warmup_stable_decay needs num_training_steps or num_stable_steps.")
    for kind in (warmup_type, decay_type):
        if kind not in ("linear", "cosine", "1-sqrt"):
            raise ConfigError(f"Unknown warm-up/decay shape {kind!r}; use 'linear', 'cosine' or '1-sqrt'.")
    if num_stable_steps is None:
        num_stable_steps = num_training_steps - num_warmup_steps - num_decay_steps
    return LambdaLR(optimizer, partial(_warmup_stable_decay, num_warmup_steps=num_warmup_steps,
                                       num_stable_steps=num_stable_steps, num_decay_steps=num_decay_steps,
                                       warmup_type=warmup_type, decay_type=decay_type, min_lr_ratio=min_lr_ratio,
                                       num_cycles=num_cycles), last_epoch)


TYPE_TO_SCHEDULER_FUNCTION = {
    SchedulerType.LINEAR: get_linear_schedule_with_warmup,
    SchedulerType.COSINE: get_cosine_schedule_with_warmup,
    SchedulerType.COSINE_WITH_RESTARTS: get_cosine_with_hard_restarts_schedule_with_warmup,
    SchedulerType.POLYNOMIAL: get_polynomial_decay_schedule_with_warmup,
    SchedulerType.CONSTANT: get_constant_schedule,
    SchedulerType.CONSTANT_WITH_WARMUP: get_constant_schedule_with_warmup,
    SchedulerType.INVERSE_SQRT: get_inverse_sqrt_schedule,
    SchedulerType.REDUCE_ON_PLATEAU: get_reduce_on_plateau_schedule,
    SchedulerType.COSINE_WITH_MIN_LR: get_cosine_with_min_lr_schedule_with_warmup,
    SchedulerType.COSINE_WARMUP_WITH_MIN_LR: get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
    SchedulerType.WARMUP_STABLE_DECAY: get_wsd_schedule,
}


def get_scheduler(name, optimizer, num_warmup_steps: int | None = None, num_training_steps: int | None = None,
                  scheduler_specific_kwargs: dict | None = None):
    """Any schedule by its `lr_scheduler_type` name, e.g. get_scheduler("linear", opt, 10, 100)."""
    name = SchedulerType(name)
    build = TYPE_TO_SCHEDULER_FUNCTION[name]
    extra = dict(scheduler_specific_kwargs or {})
    if name == SchedulerType.CONSTANT:
        return build(optimizer)
    if name == SchedulerType.REDUCE_ON_PLATEAU:
        return build(optimizer, **extra)
    if num_warmup_steps is None:
        raise ConfigError(f"The {name.value!r} schedule needs num_warmup_steps.")
    if name == SchedulerType.CONSTANT_WITH_WARMUP:
        return build(optimizer, num_warmup_steps=num_warmup_steps)
    if name == SchedulerType.INVERSE_SQRT:
        return build(optimizer, num_warmup_steps=num_warmup_steps, **extra)
    if name != SchedulerType.WARMUP_STABLE_DECAY and num_training_steps is None:
        raise ConfigError(f"The {name.value!r} schedule needs num_training_steps.")
    return build(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **extra)


# ---------------------------------------------------------------------- optimiser
_NO_DECAY_PATTERNS = [re.compile(p) for p in (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)",
                                              r"_norm(?:$|\.)")]


def get_decay_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that get weight decay: all but biases and LayerNorm/RMSNorm/`norm` weights."""
    return _decay_names(model, "")


def _decay_names(module: nn.Module, prefix: str) -> list[str]:
    names = []
    for child_name, child in module.named_children():
        if isinstance(child, nn.LayerNorm):
            continue
        names += _decay_names(child, f"{prefix}{child_name}.")
    names += [prefix + name for name, p in module._parameters.items()
              if p is not None and not any(pat.search((prefix + name).lower()) for pat in _NO_DECAY_PATTERNS)]
    return names


def _strip_wrappers(name: str) -> str:
    """A parameter name inside DDP/FSDP/compile wrappers -> the name in the bare model."""
    for wrapper in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod."):
        name = name.replace(wrapper, "")
    return name.removeprefix("module.")


def grouped_parameters(model: nn.Module, weight_decay: float, decay_names=None) -> list[dict]:
    """Two parameter groups: weight decay for weights, none for biases and norm weights."""
    decay = set(decay_names if decay_names is not None else get_decay_parameter_names(model))
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in params if _strip_wrappers(n) in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in params if _strip_wrappers(n) not in decay], "weight_decay": 0.0},
    ]


def _parse_optim_args(text: str | None) -> dict:
    result = {}
    for item in (text or "").replace(" ", "").split(","):
        if item:
            key, value = item.split("=")
            result[key] = float(value) if re.fullmatch(r"[-+.\deE]+", value) else value
    return result


def create_optimizer(model: nn.Module, args, decay_names=None) -> torch.optim.Optimizer:
    """The optimiser `args.optim` names over `model`, with Transformers' weight-decay grouping."""
    groups = grouped_parameters(model, args.weight_decay, decay_names)
    extra = _parse_optim_args(args.optim_args)
    if args.optim in (OptimizerNames.ADAMW_TORCH, OptimizerNames.ADAMW_TORCH_FUSED):
        kwargs = {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}
        if args.optim == OptimizerNames.ADAMW_TORCH_FUSED:
            kwargs["fused"] = True
        return torch.optim.AdamW(groups, **{**kwargs, **extra})
    if args.optim == OptimizerNames.SGD:
        return torch.optim.SGD(groups, lr=args.learning_rate, **extra)
    return torch.optim.Adagrad(groups, lr=args.learning_rate, **extra)
