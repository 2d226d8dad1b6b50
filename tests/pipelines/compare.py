"""Comparison of pipeline outputs: same structure, labels, texts and offsets; floats equal to a tolerance."""

from __future__ import annotations

import numpy as np
import torch


def assert_same(ours, theirs, atol: float = 1e-5, where: str = "output"):
    """Equal structure, keys, labels, texts and offsets; floats (and float tensors) equal to `atol`."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: {type(ours).__name__} is not a dict"
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
        for key in theirs:
            assert_same(ours[key], theirs[key], atol, f"{where}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)), f"{where}: {type(ours).__name__} is not a list"
        assert len(ours) == len(theirs), f"{where}: {len(ours)} items != {len(theirs)}"
        for index, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, atol, f"{where}[{index}]")
    elif isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor), f"{where}: {type(ours).__name__} is not a tensor"
        torch.testing.assert_close(ours, theirs, atol=atol, rtol=0, msg=lambda m: f"{where}: {m}")
    elif isinstance(theirs, (float, np.floating)):
        assert isinstance(ours, (float, np.floating)), f"{where}: {ours!r} is not a float"
        assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
        assert abs(float(ours) - float(theirs)) <= atol, f"{where}: {ours} != {theirs}"
    else:
        assert type(ours) is type(theirs) or (isinstance(ours, int) and isinstance(theirs, int)), \
            f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
        assert ours == theirs, f"{where}: {ours!r} != {theirs!r}"
