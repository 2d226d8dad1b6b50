"""Checkpoint folders of a training run: the files Transformers' Trainer writes, and reading them back to resume."""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import torch

from ..checkpoint import find_weight_files, load_weight_file
from ..errors import CheckpointError, MissingCheckpointError, ResourceNotFoundError
from .utils import get_last_checkpoint

logger = logging.getLogger(__name__)

TRAINER_STATE_NAME = "trainer_state.json"
TRAINING_ARGS_NAME = "training_args.bin"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"
SCALER_NAME = "scaler.pt"


def resolve_resume_checkpoint(resume_from_checkpoint, output_dir) -> str | None:
    """`True` -> the newest checkpoint-* folder of output_dir; a path -> that folder, which must hold a model."""
    if resume_from_checkpoint in (None, False):
        return None
    if resume_from_checkpoint is True:
        found = get_last_checkpoint(output_dir)
        if found is None:
            raise MissingCheckpointError(
                f"resume_from_checkpoint=True but {output_dir} has no checkpoint-<step> folder. Train once with a "
                "save_strategy other than 'no' first, or pass the path of a checkpoint folder.")
        return found
    path = os.fspath(resume_from_checkpoint)
    if not os.path.isdir(path):
        raise MissingCheckpointError(
            f"Cannot resume: checkpoint folder {path} does not exist. Pass a checkpoint-<step> folder written by "
            f"Trainer (e.g. {os.path.join(output_dir, 'checkpoint-500')}), or resume_from_checkpoint=True for the "
            "newest one in output_dir.")
    return path


def load_model_weights(model, checkpoint: str):
    """Copy the weights saved in `checkpoint` into `model` in place (the optimiser keeps its parameters)."""
    try:
        files = find_weight_files(checkpoint, {"local_files_only": True})
    except ResourceNotFoundError as err:
        raise MissingCheckpointError(f"Cannot resume from {checkpoint}: it holds no model weights "
                                    "(model.safetensors or pytorch_model.bin). Is it a Trainer checkpoint?") from err
    state = {}
    for path in files:
        state.update(load_weight_file(path))
    result = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "tied_weight_pairs", dict)())
    missing = [k for k in result.missing_keys if k not in tied]
    if missing:
        raise CheckpointError(f"The checkpoint {checkpoint} lacks weights of {type(model).__name__}: {missing[:5]}"
                              f"{' ...' if len(missing) > 5 else ''}. Resume with the model it was trained from.")
    if result.unexpected_keys:
        logger.warning("Ignored weights of %s not in the model: %s", checkpoint, result.unexpected_keys[:5])


def rng_file(checkpoint: str, args) -> str:
    return os.path.join(checkpoint, "rng_state.pth" if args.world_size <= 1 else f"rng_state_{args.process_index}.pth")


def save_rng_state(output_dir: str, args):
    """Python, numpy and torch (CPU and GPU) random states, so a resumed run draws the same numbers."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = (torch.cuda.random.get_rng_state_all() if args.world_size > 1
                          else torch.cuda.random.get_rng_state())
    os.makedirs(output_dir, exist_ok=True)
    torch.save(states, rng_file(output_dir, args))


def load_rng_state(checkpoint: str | None, args):
    if checkpoint is None:
        return
    path = rng_file(checkpoint, args)
    if not os.path.isfile(path):
        logger.info("No RNG state at %s: the resumed run will not draw the same random numbers.", path)
        return
    with _numpy_rng_types():
        states = torch.load(path, weights_only=True)
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.random.set_rng_state(states["cpu"])
    if torch.cuda.is_available() and "cuda" in states:
        if isinstance(states["cuda"], (list, tuple)):
            torch.cuda.random.set_rng_state_all(states["cuda"])
        else:
            torch.cuda.random.set_rng_state(states["cuda"])


def _numpy_rng_types():
    """Allow-list the numpy types of numpy's RNG state (a tuple holding an array) for weights_only loading."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    return torch.serialization.safe_globals([multiarray._reconstruct, np.ndarray, np.dtype,
                                             type(np.dtype(np.uint32))])


def save_scheduler(output_dir: str, scheduler):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that lr lambdas are not saved; they are rebuilt
        torch.save(scheduler.state_dict(), os.path.join(output_dir, SCHEDULER_NAME))


def read_state_file(checkpoint: str, name: str):
    """A torch file of the checkpoint (optimizer/scheduler/scaler state), read with weights_only=True; or None."""
    path = os.path.join(checkpoint, name)
    if not os.path.isfile(path):
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
