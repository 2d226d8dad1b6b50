"""TrainingArguments: the Trainer's settings, named and defaulted like Transformers, checked for contradictions."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import Enum
from functools import cached_property

from ..errors import ConfigError


class _StrEnum(str, Enum):
    """A string enum whose bad values raise ConfigError listing the good ones."""

    @classmethod
    def _missing_(cls, value):
        raise ConfigError(f"{value!r} is not a valid {cls.__name__}; choose one of "
                          f"{', '.join(repr(m.value) for m in cls)}.")

    def __str__(self):
        return self.value


class IntervalStrategy(_StrEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"


class SaveStrategy(_StrEnum):
    NO = "no"
    STEPS = "steps"
    EPOCH = "epoch"
    BEST = "best"


class SchedulerType(_StrEnum):
    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"
    INVERSE_SQRT = "inverse_sqrt"
    REDUCE_ON_PLATEAU = "reduce_lr_on_plateau"
    COSINE_WITH_MIN_LR = "cosine_with_min_lr"
    COSINE_WARMUP_WITH_MIN_LR = "cosine_warmup_with_min_lr"
    WARMUP_STABLE_DECAY = "warmup_stable_decay"


class OptimizerNames(_StrEnum):
    ADAMW_TORCH = "adamw_torch"
    ADAMW_TORCH_FUSED = "adamw_torch_fused"
    SGD = "sgd"
    ADAGRAD = "adagrad"


class ParallelMode(_StrEnum):
    NOT_PARALLEL = "not_parallel"
    DISTRIBUTED = "distributed"


_FSDP_OPTIONS = ("full_shard", "shard_grad_op", "no_shard", "hybrid_shard", "offload", "auto_wrap")


@dataclass
class TrainingArguments:
    """Everything that steers `Trainer`: schedule, batch sizes, precision, logging, evaluation, checkpoints.

    Names and defaults follow Transformers; `evaluation_strategy` and `warmup_ratio` are accepted as older spellings.
    Contradictory settings raise ConfigError when the object is built.
    """

    output_dir: str | None = None
    overwrite_output_dir: bool = False
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    eval_strategy: IntervalStrategy | str = "no"
    evaluation_strategy: IntervalStrategy | str | None = None
    prediction_loss_only: bool = False
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    eval_accumulation_steps: int | None = None
    eval_delay: float = 0
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    num_train_epochs: float = 3.0
    max_steps: int = -1
    lr_scheduler_type: SchedulerType | str = "linear"
    lr_scheduler_kwargs: dict | str | None = None
    warmup_ratio: float | None = None
    warmup_steps: float = 0
    log_level: str = "passive"
    logging_dir: str | None = None
    logging_strategy: IntervalStrategy | str = "steps"
    logging_first_step: bool = False
    logging_steps: float = 500
    logging_nan_inf_filter: bool = True
    save_strategy: SaveStrategy | str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    save_only_model: bool = False
    save_on_each_node: bool = False
    use_cpu: bool = False
    seed: int = 42
    data_seed: int | None = None
    full_determinism: bool = False
    bf16: bool = False
    fp16: bool = False
    bf16_full_eval: bool = False
    fp16_full_eval: bool = False
    local_rank: int = -1
    ddp_backend: str | None = None
    ddp_timeout: int = 1800
    ddp_find_unused_parameters: bool | None = None
    ddp_bucket_cap_mb: int | None = None
    ddp_broadcast_buffers: bool | None = None
    fsdp: list | str | bool | None = None
    fsdp_config: dict | str | None = None
    dataloader_drop_last: bool = False
    eval_steps: float | None = None
    dataloader_num_workers: int = 0
    dataloader_prefetch_factor: int | None = None
    dataloader_pin_memory: bool = True
    dataloader_persistent_workers: bool = False
    run_name: str | None = None
    disable_tqdm: bool | None = None
    remove_unused_columns: bool = True
    label_names: list[str] | None = None
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    ignore_data_skip: bool = False
    restore_callback_states_from_checkpoint: bool = False
    label_smoothing_factor: float = 0.0
    optim: OptimizerNames | str = "adamw_torch_fused"
    optim_args: str | None = None
    report_to: str | list[str] | None = "none"
    push_to_hub: bool = False
    resume_from_checkpoint: str | None = None
    gradient_checkpointing: bool = False
    gradient_checkpointing_kwargs: dict | None = None
    include_for_metrics: list[str] = field(default_factory=list)
    eval_do_concat_batches: bool = True
    eval_on_start: bool = False
    average_tokens_across_devices: bool = True
    train_sampling_strategy: str = "random"
    use_cache: bool = False
    torch_compile: bool = False

    def __post_init__(self):
        self._normalise()
        self._validate()
        if self.world_size_from_env() > 1 or self.local_rank != -1:
            _ = self._setup_devices  # join the process group now, like Transformers, so ranks are known early

    # ------------------------------------------------------------------ normalisation and checks
    def _normalise(self):
        if self.output_dir is None:
            self.output_dir = "trainer_output"
        self.output_dir = os.path.expanduser(os.fspath(self.output_dir))
        if self.evaluation_strategy is not None:
            self.eval_strategy = self.evaluation_strategy
            self.evaluation_strategy = None
        for name in ("lr_scheduler_kwargs", "fsdp_config"):
            value = getattr(self, name)
            if isinstance(value, str) and value.strip().startswith("{"):
                setattr(self, name, json.loads(value))
        self.eval_strategy = IntervalStrategy(self.eval_strategy)
        self.logging_strategy = IntervalStrategy(self.logging_strategy)
        self.save_strategy = SaveStrategy(self.save_strategy)
        self.lr_scheduler_type = SchedulerType(self.lr_scheduler_type)
        self.optim = OptimizerNames(self.optim)
        if self.disable_tqdm is None:
            self.disable_tqdm = False
        if self.eval_strategy != IntervalStrategy.NO:
            self.do_eval = True
        if self.eval_strategy == IntervalStrategy.STEPS and not self.eval_steps:
            if not self.logging_steps:
                raise ConfigError("eval_strategy='steps' needs eval_steps (or logging_steps) greater than 0.")
            self.eval_steps = self.logging_steps
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "loss"
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = not self.metric_for_best_model.endswith("loss")
        self.report_to = self._reporting(self.report_to)
        self.fsdp = self._fsdp_options(self.fsdp)
        self.fsdp_config = dict(self.fsdp_config or {})

    @staticmethod
    def _reporting(report_to) -> list:
        if report_to in (None, "none", ["none"], "all", ["all"], []):
            return []  # "all" means every installed integration; leanformers ships none
        names = [report_to] if isinstance(report_to, str) else list(report_to)
        raise ConfigError(
            f"report_to={names} is not supported: leanformers has no built-in experiment trackers. Use "
            "report_to='none' and add a TrainerCallback whose on_log(args, state, control, logs) sends the logs "
            "where you want them.")

    @staticmethod
    def _fsdp_options(value) -> list[str]:
        if value in (None, False, "", []):
            return []
        if value is True:
            return ["full_shard"]
        options = value.split() if isinstance(value, str) else [str(v) for v in value]
        unknown = [o for o in options if o not in _FSDP_OPTIONS]
        if unknown:
            raise ConfigError(f"Unknown fsdp option(s) {unknown}; choose from {list(_FSDP_OPTIONS)}, "
                              "e.g. fsdp='full_shard auto_wrap'.")
        return options

    def _validate(self):
        for name in ("logging", "eval", "save"):
            steps = getattr(self, f"{name}_steps")
            if steps is not None and steps > 1:
                if steps != int(steps):
                    raise ConfigError(f"{name}_steps must be an integer when above 1 (a float below 1 is a "
                                      f"fraction of the run), got {steps}.")
                setattr(self, f"{name}_steps", int(steps))
        if self.logging_strategy == IntervalStrategy.STEPS and self.logging_steps == 0:
            raise ConfigError("logging_strategy='steps' needs logging_steps > 0.")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("gradient_accumulation_steps must be at least 1, got "
                              f"{self.gradient_accumulation_steps}.")
        if self.warmup_steps < 0 or (self.warmup_ratio is not None and not 0 <= self.warmup_ratio <= 1):
            raise ConfigError("warmup_steps must be >= 0 and warmup_ratio within [0, 1].")
        if self.fp16 and self.bf16:
            raise ConfigError("fp16=True and bf16=True contradict each other: pick one mixed-precision mode.")
        self._validate_best_model()
        self._validate_precision()
        if self.lr_scheduler_type == SchedulerType.REDUCE_ON_PLATEAU and self.eval_strategy == IntervalStrategy.NO:
            raise ConfigError("lr_scheduler_type='reduce_lr_on_plateau' steps on evaluation metrics: set "
                              "eval_strategy to 'steps' or 'epoch'.")
        if self.push_to_hub:
            raise ConfigError("push_to_hub=True is not supported; save with trainer.save_model(dir) and upload the "
                              "folder with huggingface_hub.upload_folder.")
        if self.dataloader_num_workers == 0 and self.dataloader_prefetch_factor is not None:
            raise ConfigError("dataloader_prefetch_factor only applies with dataloader_num_workers > 0.")
        if self.train_sampling_strategy not in ("random", "sequential"):
            raise ConfigError(f"train_sampling_strategy={self.train_sampling_strategy!r} is not supported; use "
                              "'random' or 'sequential'.")

    def _validate_best_model(self):
        if (self.save_strategy == SaveStrategy.BEST or self.load_best_model_at_end) and not self.metric_for_best_model:
            raise ConfigError("save_strategy='best' needs metric_for_best_model (e.g. 'loss' or 'accuracy').")
        if not self.load_best_model_at_end or self.save_strategy == SaveStrategy.BEST:
            return
        if self.eval_strategy != self.save_strategy:
            raise ConfigError(
                "load_best_model_at_end=True needs matching evaluation and save strategies (or save_strategy="
                f"'best'), but eval_strategy={self.eval_strategy.value!r} and save_strategy="
                f"{self.save_strategy.value!r}. Set both to 'steps' or both to 'epoch'.")
        if self.eval_strategy == IntervalStrategy.STEPS:
            scale = 1_000_000  # compare fractions of the run exactly
            if (self.eval_steps < 1) != (self.save_steps < 1) or round(self.save_steps * scale) % round(
                    self.eval_steps * scale):
                raise ConfigError(
                    f"load_best_model_at_end=True needs save_steps ({self.save_steps}) to be a round multiple of "
                    f"eval_steps ({self.eval_steps}), so that every checkpoint has been evaluated.")

    def _validate_precision(self):
        import torch

        cuda = torch.cuda.is_available() and not self.use_cpu
        if (self.fp16 or self.fp16_full_eval) and not cuda:
            name = "fp16" if self.fp16 else "fp16_full_eval"
            raise ConfigError(f"{name}=True needs a CUDA GPU (float16 training uses a gradient scaler there). On "
                              "the CPU use bf16=True (or bf16_full_eval=True), which autocasts to bfloat16.")
        if self.bf16 and cuda and not torch.cuda.is_bf16_supported():
            raise ConfigError("bf16=True but this GPU has no bfloat16 support; use fp16=True instead.")

    # ------------------------------------------------------------------ devices and processes
    @staticmethod
    def world_size_from_env() -> int:
        return int(os.environ.get("WORLD_SIZE", "1"))

    @cached_property
    def _setup_devices(self):
        import torch
        import torch.distributed as dist

        cuda = torch.cuda.is_available() and not self.use_cpu
        local_rank = int(os.environ.get("LOCAL_RANK", self.local_rank))
        if self.world_size_from_env() > 1 or self.local_rank != -1:
            if not dist.is_initialized():
                backend = self.ddp_backend or ("nccl" if cuda else "gloo")
                dist.init_process_group(backend=backend, timeout=timedelta(seconds=self.ddp_timeout))
            if cuda:
                torch.cuda.set_device(max(local_rank, 0))
                return torch.device("cuda", max(local_rank, 0))
            return torch.device("cpu")
        return torch.device("cuda", 0) if cuda else torch.device("cpu")

    @property
    def device(self):
        """The torch device this process trains on."""
        return self._setup_devices

    @property
    def n_gpu(self) -> int:
        _ = self._setup_devices
        return 1 if self.device.type == "cuda" else 0

    @property
    def parallel_mode(self) -> ParallelMode:
        return ParallelMode.DISTRIBUTED if self.world_size > 1 else ParallelMode.NOT_PARALLEL

    @property
    def world_size(self) -> int:
        import torch.distributed as dist

        _ = self._setup_devices
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def process_index(self) -> int:
        import torch.distributed as dist

        _ = self._setup_devices
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    @property
    def local_process_index(self) -> int:
        return int(os.environ.get("LOCAL_RANK", 0)) if self.world_size > 1 else 0

    @property
    def should_log(self) -> bool:
        return self.process_index == 0

    @property
    def should_save(self) -> bool:
        """Whether this process writes files: only rank 0 (or each node's first rank with save_on_each_node)."""
        return (self.local_process_index if self.save_on_each_node else self.process_index) == 0

    @property
    def train_batch_size(self) -> int:
        return self.per_device_train_batch_size

    @property
    def eval_batch_size(self) -> int:
        return self.per_device_eval_batch_size

    @property
    def ddp_timeout_delta(self) -> timedelta:
        return timedelta(seconds=self.ddp_timeout)

    @property
    def mixed_precision(self) -> str:
        return "fp16" if self.fp16 else "bf16" if self.bf16 else "no"

    @contextlib.contextmanager
    def main_process_first(self, local: bool = True, desc: str = "work"):
        """Run the body on the main process first (e.g. dataset preprocessing), the other ranks after it."""
        import torch.distributed as dist

        if self.world_size <= 1:
            yield
            return
        is_main = (self.local_process_index if local else self.process_index) == 0
        if not is_main:
            dist.barrier()
        yield
        if is_main:
            dist.barrier()

    # ------------------------------------------------------------------ schedule and serialisation
    def get_warmup_steps(self, num_training_steps: int) -> int:
        """Warm-up length in optimiser steps: warmup_steps (a count, or a fraction when below 1) or warmup_ratio."""
        if self.warmup_steps >= 1:
            return int(self.warmup_steps)
        if self.warmup_steps > 0:
            return math.ceil(num_training_steps * self.warmup_steps)
        return math.ceil(num_training_steps * (self.warmup_ratio or 0.0))

    def to_dict(self) -> dict:
        """Every field, enums as their string values (JSON-ready)."""
        result = {}
        for f in fields(self):
            value = getattr(self, f.name)
            result[f.name] = value.value if isinstance(value, Enum) else value
        return result

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_sanitized_dict(self) -> dict:
        return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in self.to_dict().items()}

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_setup_devices", None)  # a torch.device tied to this process
        return state


@dataclass
class Seq2SeqTrainingArguments(TrainingArguments):
    """TrainingArguments plus generation settings used by Seq2SeqTrainer when `predict_with_generate=True`."""

    sortish_sampler: bool = False
    predict_with_generate: bool = False
    generation_max_length: int | None = None
    generation_num_beams: int | None = None
    generation_config: object = None
