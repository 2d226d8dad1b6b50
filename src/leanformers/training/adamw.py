"""`AdamW` as Transformers 4.x shipped it: Adam with decoupled weight decay and a `correct_bias` switch.

Kept for code written against 4.x (`from transformers import AdamW`); new code should use `torch.optim.AdamW`.
Differences from torch's: eps defaults to 1e-6, eps is added after the bias-corrected step size is folded in (the
original BERT form), and `correct_bias=False` turns bias correction off, as the BERT TensorFlow code did.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.optim import Optimizer

_warned = False


def _warn_deprecated_once():
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("This implementation of AdamW is deprecated: use torch.optim.AdamW instead, or pass "
                      "no_deprecation_warning=True to silence this warning.", FutureWarning, stacklevel=3)


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), in the form of the original BERT optimiser."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, correct_bias: bool = True, no_deprecation_warning: bool = False):
        if not no_deprecation_warning:
            _warn_deprecated_once()
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr} - should be >= 0.0")
        for index, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter: {beta} - betas[{index}] should be in [0.0, 1.0)")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps} - should be >= 0.0")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "correct_bias": correct_bias}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param, group):
        grad = param.grad
        if grad.is_sparse:
            raise RuntimeError("AdamW does not support sparse gradients; use torch.optim.SparseAdam instead.")
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        denominator = exp_avg_sq.sqrt().add_(group["eps"])
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
        param.addcdiv_(exp_avg, denominator, value=-step_size)
        # decoupled decay: applied to the weights directly, never mixed into the moment estimates
        if group["weight_decay"] > 0.0:
            param.add_(param, alpha=-group["lr"] * group["weight_decay"])
