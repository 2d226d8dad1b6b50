"""Trainer: the training loop of Transformers (same batches, loss scaling, schedule and checkpoints) on plain torch."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import os
import shutil
import time

import torch

from ..errors import ConfigError
from . import checkpointing as ckpt
from .arguments import IntervalStrategy, SaveStrategy, TrainingArguments
from .callbacks import (CallbackHandler, DefaultFlowCallback, ExportableState, PrinterCallback, ProgressCallback,
                        TrainerControl, TrainerState)
from .collators import DataCollatorWithPadding, RemoveColumnsCollator, default_data_collator
from .data import (build_train_dataloader, find_labels, is_hf_dataset, num_train_batches, prefetched,
                   remove_unused_columns, signature_columns)
from .distributed import (barrier, clip_grad_norm, is_fsdp, mean_across_processes, model_state_dict,
                          optimizer_state_dict, load_optimizer_state, sum_across_processes, unwrap_model,
                          wrap_model)
from .evaluation import EvaluationMixin
from .optimization import create_optimizer, get_decay_parameter_names, get_scheduler, grouped_parameters
from .utils import (PREFIX_CHECKPOINT_DIR, LabelSmoother, TrainOutput, enable_full_determinism, has_length,
                    rotate_checkpoints, set_seed, sorted_checkpoints, speed_metrics)

logger = logging.getLogger(__name__)


def _head_names(head: str) -> set[str]:
    from ..auto import REGISTRY

    return {arch.heads[head] for arch in REGISTRY.values() if head in arch.heads}


class Trainer(EvaluationMixin):
    """Train, evaluate and predict with a model, the way Transformers' Trainer does.

    `train_dataset` / `eval_dataset` may be a `datasets.Dataset`, a torch Dataset or a list of dicts; columns the
    model's forward() does not take are dropped (remove_unused_columns). Runs unchanged under torchrun (DDP, or
    FSDP with `fsdp=...`).
    """

    def __init__(self, model=None, args: TrainingArguments | None = None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, model_init=None, compute_loss_func=None,
                 compute_metrics=None, callbacks=None, optimizers=(None, None), optimizer_cls_and_kwargs=None,
                 preprocess_logits_for_metrics=None, tokenizer=None):
        self.args = args if args is not None else TrainingArguments(output_dir="tmp_trainer")
        (enable_full_determinism if self.args.full_determinism else set_seed)(self.args.seed)
        self.model_init = model_init
        self.model = self._resolve_model(model)
        self.model_wrapped = self.model
        self.processing_class = processing_class if processing_class is not None else tokenizer
        self._inspect_model()
        pad = getattr(self.processing_class, "pad", None)
        self.data_collator = data_collator or (DataCollatorWithPadding(self.processing_class) if callable(pad)
                                               else default_data_collator)
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.compute_loss_func, self.compute_metrics = compute_loss_func, compute_metrics
        self.preprocess_logits_for_metrics = preprocess_logits_for_metrics
        self.optimizer, self.lr_scheduler = optimizers
        self.optimizer_cls_and_kwargs = optimizer_cls_and_kwargs
        self._validate()
        progress = PrinterCallback if self.args.disable_tqdm else ProgressCallback
        self.callback_handler = CallbackHandler([DefaultFlowCallback, *(callbacks or []), progress], self.model,
                                                self.processing_class, self.optimizer, self.lr_scheduler)
        if self.args.should_save:
            os.makedirs(self.args.output_dir, exist_ok=True)
        self.control = TrainerControl()
        self.state = TrainerState(is_local_process_zero=self.is_local_process_zero(),
                                  is_world_process_zero=self.is_world_process_zero(),
                                  stateful_callbacks=self._stateful_callbacks())
        self.is_in_train = False
        self.current_flos = 0
        self.scaler = None
        self._created_lr_scheduler = False
        self._dropped_columns: set[str] = set()
        self.control = self.callback_handler.on_init_end(self.args, self.state, self.control)
        if getattr(getattr(self.model, "config", None), "use_cache", None) is not None:
            self.model.config.use_cache = self.args.use_cache

    # ------------------------------------------------------------------ set-up
    def _resolve_model(self, model):
        if model is None and self.model_init is None:
            raise ConfigError("Trainer needs a model (or a model_init function that builds one).")
        if model is not None and self.model_init is not None:
            raise ConfigError("Pass either model or model_init to Trainer, not both.")
        model = model if model is not None else self.call_model_init()
        if type(model).__name__ in _head_names(""):
            raise ConfigError(
                f"{type(model).__name__} only computes hidden states and takes no labels, so it cannot be trained "
                "as is. Load a model with a task head, e.g. AutoModelForSequenceClassification.")
        if not self.args.fsdp:
            model = model.to(self.args.device)
        return model

    def call_model_init(self, trial=None):
        params = inspect.signature(self.model_init).parameters
        model = self.model_init(trial) if len(params) == 1 else self.model_init()
        if model is None:
            raise ConfigError("model_init returned None; it must return a model.")
        return model

    def _inspect_model(self):
        model = unwrap_model(self.model)
        if hasattr(model, "accepts_loss_kwargs"):
            self.model_accepts_loss_kwargs = model.accepts_loss_kwargs
        else:
            params = inspect.signature(model.forward).parameters.values()
            self.model_accepts_loss_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
        self.label_names = find_labels(type(model)) if self.args.label_names is None else self.args.label_names
        forward = inspect.signature(type(model).forward).parameters
        self.can_return_loss = "return_loss" in forward and forward["return_loss"].default is True
        self._is_causal_lm = type(model).__name__ in _head_names("CausalLM")
        # like Transformers, label counting skips each row's first label only for heads named *ForCausalLM or
        # *ForConditionalGeneration (decoder-only); e.g. GPT2LMHeadModel counts every label
        name = type(model).__name__
        self._loss_shifts_labels = ("ForCausalLM" in name or "ForConditionalGeneration" in name) and not getattr(
            getattr(model, "config", None), "is_encoder_decoder", False)
        self.label_smoother = None
        if self.args.label_smoothing_factor:
            if getattr(getattr(model, "config", None), "problem_type", None) == "multi_label_classification":
                logger.warning("Label smoothing does not apply to multi-label classification; it is turned off.")
            else:
                self.label_smoother = LabelSmoother(epsilon=self.args.label_smoothing_factor)

    def _validate(self):
        args = self.args
        if args.eval_strategy != IntervalStrategy.NO and self.eval_dataset is None:
            raise ConfigError(
                f"eval_strategy={args.eval_strategy.value!r} evaluates during training, but no eval_dataset was "
                "passed to Trainer. Pass eval_dataset=..., or set eval_strategy='no'.")
        if self.train_dataset is not None and not has_length(self.train_dataset) and args.max_steps <= 0:
            raise ConfigError("The train_dataset has no length, so the number of steps is unknown: set max_steps.")
        if self.optimizer_cls_and_kwargs is not None and self.optimizer is not None:
            raise ConfigError("Pass either optimizers=(optimizer, scheduler) or optimizer_cls_and_kwargs, not both.")
        if self.model_init is not None and (self.optimizer is not None or self.lr_scheduler is not None):
            raise ConfigError("optimizers=... cannot be combined with model_init (the model is rebuilt in train()).")
        if args.fsdp and (self.optimizer is not None or self.lr_scheduler is not None):
            raise ConfigError("optimizers=... cannot be used with fsdp: the optimiser must be built on the sharded "
                              "model. Subclass Trainer and override create_optimizer instead.")
        if not callable(self.data_collator):
            raise ConfigError("data_collator must be callable (a function, or an object with __call__).")

    def _stateful_callbacks(self):
        return [c for c in self.callback_handler.callbacks + [self.control] if isinstance(c, ExportableState)]

    @property
    def tokenizer(self):
        return self.processing_class

    def add_callback(self, callback):
        self.callback_handler.add_callback(callback)

    def pop_callback(self, callback):
        return self.callback_handler.pop_callback(callback)

    def remove_callback(self, callback):
        self.callback_handler.remove_callback(callback)

    def is_local_process_zero(self) -> bool:
        return self.args.local_process_index == 0

    def is_world_process_zero(self) -> bool:
        return self.args.process_index == 0

    # ------------------------------------------------------------------ data
    def _signature_columns(self):
        return signature_columns(unwrap_model(self.model), self.label_names)

    def _prepare_dataset(self, dataset, description: str):
        """A dataset ready for a DataLoader plus the collator to use with it (unused columns removed either way)."""
        if not self.args.remove_unused_columns:
            return dataset, self.data_collator
        columns = self._signature_columns()
        if is_hf_dataset(dataset):
            dataset, dropped = remove_unused_columns(dataset, columns, description)
            self._dropped_columns.update(dropped)
            return dataset, self.data_collator
        return dataset, RemoveColumnsCollator(self.data_collator, columns, self._dropped_columns.update)

    def get_train_dataloader(self, epoch: int = 0, skip_batches: int = 0):
        if self.train_dataset is None:
            raise ConfigError("Trainer.train() needs a train_dataset.")
        dataset, collator = self._prepare_dataset(self.train_dataset, "training")
        return build_train_dataloader(dataset, self.args, collator, skip_batches=skip_batches, epoch=epoch)

    # ------------------------------------------------------------------ optimiser and schedule
    def create_optimizer(self, model=None):
        if self.optimizer is None:
            target = model if model is not None else self.model
            if self.optimizer_cls_and_kwargs is not None:
                cls, kwargs = self.optimizer_cls_and_kwargs
                decay = getattr(self, "_decay_names", None) or get_decay_parameter_names(unwrap_model(target))
                self.optimizer = cls(grouped_parameters(target, self.args.weight_decay, decay), **kwargs)
            else:
                self.optimizer = create_optimizer(target, self.args, getattr(self, "_decay_names", None))
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                self.args.lr_scheduler_type, optimizer or self.optimizer,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps, scheduler_specific_kwargs=self.args.lr_scheduler_kwargs)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def create_optimizer_and_scheduler(self, num_training_steps: int):
        self.create_optimizer()
        self.create_scheduler(num_training_steps)

    def _get_learning_rate(self) -> float:
        if isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return self.optimizer.param_groups[0]["lr"]
        return self.lr_scheduler.get_last_lr()[0]

    # ------------------------------------------------------------------ training
    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Run the training loop; `resume_from_checkpoint` (True = newest in output_dir, or a folder) continues
        a run exactly where its checkpoint left it."""
        if kwargs:
            raise TypeError(f"train() got unexpected keyword arguments {sorted(kwargs)}.")
        self.is_in_train = True
        if self.model_init is not None:
            set_seed(self.args.seed)
            self.model = self.model_wrapped = self.call_model_init(trial).to(self.args.device)
            self.optimizer = self.lr_scheduler = None
        if self.args.gradient_checkpointing:
            if not hasattr(self.model, "gradient_checkpointing_enable"):
                raise ConfigError(f"{type(self.model).__name__} does not support gradient checkpointing; set "
                                  "gradient_checkpointing=False.")
            self.model.gradient_checkpointing_enable(self.args.gradient_checkpointing_kwargs)
        checkpoint = ckpt.resolve_resume_checkpoint(resume_from_checkpoint, self.args.output_dir)
        if checkpoint is not None:
            ckpt.load_model_weights(unwrap_model(self.model), checkpoint)
        try:
            return self._inner_training_loop(checkpoint, ignore_keys_for_eval)
        finally:
            self.is_in_train = False

    def _schedule(self):
        """(batches per epoch, optimiser steps per epoch, max_steps, epochs) for this run."""
        args = self.args
        batches = num_train_batches(self.train_dataset, args)
        if batches is None:
            return args.max_steps * args.gradient_accumulation_steps, args.max_steps, args.max_steps, 2**62
        updates = max(batches // args.gradient_accumulation_steps
                      + int(batches % args.gradient_accumulation_steps > 0), 1)
        if args.max_steps > 0:
            return batches, updates, args.max_steps, -(-args.max_steps // updates)
        return batches, updates, math.ceil(args.num_train_epochs * updates), math.ceil(args.num_train_epochs)

    def _init_state(self, max_steps, num_epochs, updates_per_epoch, checkpoint):
        args = self.args
        self.state = TrainerState(stateful_callbacks=self._stateful_callbacks())
        self.state.train_batch_size = args.train_batch_size
        self.state.compute_steps(args, max_steps)
        epochs_done, batches_done = 0, 0
        state_file = os.path.join(checkpoint, ckpt.TRAINER_STATE_NAME) if checkpoint else None
        if state_file and os.path.isfile(state_file):
            self.state = TrainerState.load_from_json(state_file)
            if self.state.best_model_checkpoint and not os.path.isdir(self.state.best_model_checkpoint):
                self.state.best_model_checkpoint = None
            self._load_callback_state()
            epochs_done = self.state.global_step // updates_per_epoch
            if not args.ignore_data_skip:
                batches_done = (self.state.global_step % updates_per_epoch) * args.gradient_accumulation_steps
        self.state.max_steps, self.state.num_train_epochs = max_steps, num_epochs
        self.state.is_local_process_zero = self.is_local_process_zero()
        self.state.is_world_process_zero = self.is_world_process_zero()
        return epochs_done, batches_done

    def _load_callback_state(self):
        """Give stateful callbacks (e.g. early stopping's patience count) their checkpointed state, when asked."""
        if not self.args.restore_callback_states_from_checkpoint:
            return
        saved = self.state.stateful_callbacks or {}
        for callback in self.callback_handler.callbacks + [self.control]:
            state = saved.get(type(callback).__name__)
            if isinstance(callback, ExportableState) and isinstance(state, dict):
                for key, value in state.get("attributes", {}).items():
                    setattr(callback, key, value)
                if isinstance(callback, TrainerControl):
                    for key, value in state.get("args", {}).items():
                        setattr(callback, key, value)

    def _prepare_model_and_optimizer(self, max_steps, checkpoint):
        if self._created_lr_scheduler:
            self.lr_scheduler, self._created_lr_scheduler = None, False
        self._decay_names = get_decay_parameter_names(unwrap_model(self.model))
        if self.args.fsdp and self.args.world_size > 1:
            self.model_wrapped = wrap_model(self.model, self.args)
            self.create_optimizer(self.model_wrapped)
        else:
            self.create_optimizer()
            self.model_wrapped = wrap_model(self.model, self.args)
        if self.args.torch_compile:
            self.model_wrapped = torch.compile(self.model_wrapped)
        self.create_scheduler(max_steps)
        self.scaler = self._create_grad_scaler()
        if checkpoint is not None:
            self._load_optimizer_and_scheduler(checkpoint)
        for name in ("model", "optimizer", "lr_scheduler"):
            setattr(self.callback_handler, name, getattr(self, name))
        return self.model_wrapped

    def _create_grad_scaler(self):
        """fp16 scales the loss so that small float16 gradients do not flush to zero; other modes need no scaler."""
        return torch.amp.GradScaler(self.args.device.type) if self.args.fp16 else None

    def _load_optimizer_and_scheduler(self, checkpoint):
        optimizer_state = ckpt.read_state_file(checkpoint, ckpt.OPTIMIZER_NAME)
        scheduler_state = ckpt.read_state_file(checkpoint, ckpt.SCHEDULER_NAME)
        if optimizer_state is None or scheduler_state is None:
            logger.warning("%s has no optimizer.pt/scheduler.pt: the optimiser restarts from scratch.", checkpoint)
            return
        load_optimizer_state(self.model_wrapped, self.optimizer, optimizer_state)
        self.lr_scheduler.load_state_dict(scheduler_state)
        scaler_state = ckpt.read_state_file(checkpoint, ckpt.SCALER_NAME)
        if self.scaler is not None and scaler_state is not None:
            self.scaler.load_state_dict(scaler_state)

    def _inner_training_loop(self, checkpoint, ignore_keys_for_eval):
        args = self.args
        batches_per_epoch, updates_per_epoch, max_steps, num_epochs = self._schedule()
        epochs_done, batches_done = self._init_state(max_steps, num_epochs, updates_per_epoch, checkpoint)
        model = self._prepare_model_and_optimizer(max_steps, checkpoint)
        start_time = time.time()
        self._initial_global_step = self.state.global_step
        self._tr_loss = torch.tensor(0.0, device=args.device)
        self._total_loss_scalar = 0.0
        self._globalstep_last_logged = self.state.global_step
        model.zero_grad()
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)
        if args.eval_on_start:
            self._evaluate(ignore_keys_for_eval, skip_scheduler=True)
        for epoch in range(epochs_done, num_epochs):
            self.control = self.callback_handler.on_epoch_begin(args, self.state, self.control)
            resuming = checkpoint is not None and epoch == epochs_done
            self._run_epoch(model, epoch, batches_per_epoch, updates_per_epoch,
                            checkpoint if resuming else None, batches_done if resuming else 0,
                            ignore_keys_for_eval, start_time)
            if self.control.should_training_stop:
                break
        return self._finish_training(start_time, max_steps, batches_per_epoch)

    def _next_batches(self, iterator, count: int) -> list:
        batches = []
        for _ in range(count):
            try:
                batches.append(next(iterator))
            except StopIteration:
                break
        return batches

    def _run_epoch(self, model, epoch, steps_in_epoch, updates_per_epoch, checkpoint, skip, ignore_keys, start):
        args, ga = self.args, self.args.gradient_accumulation_steps
        if checkpoint is not None and skip == 0:
            ckpt.load_rng_state(checkpoint, args)  # resumed at an epoch boundary
        dataloader = self.get_train_dataloader(epoch=epoch, skip_batches=skip)
        self.callback_handler.train_dataloader = dataloader
        iterator = prefetched(dataloader)
        step, sync_rng = skip - 1, checkpoint is not None and skip > 0
        remainder = steps_in_epoch % ga or ga
        for update in range(skip // ga, updates_per_epoch):
            batches = self._next_batches(iterator, ga if update != updates_per_epoch - 1 else remainder)
            if not batches:
                break
            num_items = self._num_items_in_batch(batches)
            self.current_gradient_accumulation_steps = len(batches)
            if sync_rng:
                # after reading the batches, as the uninterrupted run had at this point
                ckpt.load_rng_state(checkpoint, args)
                sync_rng = False
            for index, inputs in enumerate(batches):
                step += 1
                if step % ga == 0:
                    self.control = self.callback_handler.on_step_begin(args, self.state, self.control)
                last = index == len(batches) - 1
                with contextlib.nullcontext() if last else self._no_sync(model):
                    loss = self.training_step(model, inputs, num_items)
                self._accumulate_loss(loss)
                self.current_flos += float(self.floating_point_ops(inputs))
                if (step + 1) % ga == 0 or step + 1 == steps_in_epoch:
                    self._optimizer_step(model)
                    self.state.epoch = epoch + (step + 1) / steps_in_epoch
                    self.control = self.callback_handler.on_step_end(args, self.state, self.control)
                    self._maybe_log_save_evaluate(model, ignore_keys, start)
                else:
                    self.control = self.callback_handler.on_substep_end(args, self.state, self.control)
                if self.control.should_epoch_stop or self.control.should_training_stop:
                    break
            if self.control.should_epoch_stop or self.control.should_training_stop:
                break
        if step < 0:
            logger.warning("The training data produced no batch; stopping at step %d.", self.state.global_step)
            self.control.should_training_stop = True
        self.control = self.callback_handler.on_epoch_end(args, self.state, self.control)
        self._maybe_log_save_evaluate(model, ignore_keys, start)

    def _no_sync(self, model):
        no_sync = getattr(model, "no_sync", None)
        return no_sync() if callable(no_sync) else contextlib.nullcontext()

    def _accumulate_loss(self, loss):
        if self.args.logging_nan_inf_filter and not torch.isfinite(loss):
            # a non-finite loss counts as the running average, so one bad batch does not poison the log
            self._tr_loss += self._tr_loss / (1 + self.state.global_step - self._globalstep_last_logged)
        else:
            self._tr_loss += loss.to(self._tr_loss.device)

    def _optimizer_step(self, model):
        args = self.args
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        self._grad_norm = clip_grad_norm(model, args.max_grad_norm if args.max_grad_norm > 0 else float("inf"))
        self.control = self.callback_handler.on_pre_optimizer_step(args, self.state, self.control)
        skipped = False
        if self.scaler is not None:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            skipped = self.scaler.get_scale() < scale  # inf/nan gradients: the step was skipped
        else:
            self.optimizer.step()
        self.control = self.callback_handler.on_optimizer_step(args, self.state, self.control)
        self._learning_rate = self._get_learning_rate()
        if not skipped and not isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.lr_scheduler.step()
        model.zero_grad()
        self.state.global_step += 1

    def _num_items_in_batch(self, batches, across_processes: bool = True):
        """Label tokens in the whole accumulated batch (across ranks), when the loss divides by it."""
        if not batches or "labels" not in batches[0] or not (self.model_accepts_loss_kwargs or self.compute_loss_func):
            return None
        try:
            counted = [b["shift_labels"] if "shift_labels" in b else
                       b["labels"][..., 1:] if self._loss_shifts_labels else b["labels"] for b in batches]
            total = sum(labels.ne(-100).sum() for labels in counted)
        except (TypeError, AttributeError):
            return None
        total = total.to(self.args.device)
        if across_processes and self.args.average_tokens_across_devices and self.args.world_size > 1:
            total = sum_across_processes(total)
        return total

    def _autocast(self):
        if self.args.bf16 or self.args.fp16:
            dtype = torch.bfloat16 if self.args.bf16 else torch.float16
            return torch.autocast(device_type=self.args.device.type, dtype=dtype)
        return contextlib.nullcontext()

    def compute_loss_context_manager(self):
        return self._autocast()

    def _prepare_input(self, data):
        if isinstance(data, dict):
            return type(data)({k: self._prepare_input(v) for k, v in data.items()})
        if isinstance(data, (tuple, list)):
            return type(data)(self._prepare_input(v) for v in data)
        return data.to(self.args.device) if isinstance(data, torch.Tensor) else data

    def _prepare_inputs(self, inputs):
        inputs = self._prepare_input(inputs)
        if len(inputs) == 0:
            raise ConfigError(f"The batch is empty: no field of the dataset is an argument of the model "
                              f"(it takes {', '.join(self._signature_columns())}).")
        return inputs

    def training_step(self, model, inputs, num_items_in_batch=None):
        """Forward and backward on one micro-batch; returns the (detached) loss as logged."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        with self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or \
            self.compute_loss_func is not None
        if not scaled:
            loss = loss / self.current_gradient_accumulation_steps
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        return loss.detach()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss on `inputs` (or label smoothing / compute_loss_func on its logits)."""
        self._check_labels(inputs)
        labels = None
        if (self.label_smoother is not None or self.compute_loss_func is not None) and "labels" in inputs:
            inputs = dict(inputs)
            labels = inputs.pop("labels")
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            inputs = {**inputs, "num_items_in_batch": num_items_in_batch}
        outputs = model(**inputs)
        if self.compute_loss_func is not None:
            loss = self.compute_loss_func(outputs, labels, num_items_in_batch=num_items_in_batch)
        elif labels is not None:
            loss = self.label_smoother(outputs, labels, shift_labels=self._is_causal_lm,
                                       num_items_in_batch=num_items_in_batch)
        else:
            if isinstance(outputs, dict) and outputs.get("loss") is None:
                raise self._missing_labels_error(inputs)
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
        if model.training and self.args.average_tokens_across_devices and self.args.world_size > 1 \
                and num_items_in_batch is not None and (self.model_accepts_loss_kwargs or self.compute_loss_func):
            loss = loss * self.args.world_size  # DDP averages gradients; the loss was divided by the global count
        return (loss, outputs) if return_outputs else loss

    def _missing_labels_error(self, inputs) -> ConfigError:
        name = type(unwrap_model(self.model)).__name__
        dropped = f" Dropped as unused: {sorted(self._dropped_columns)}." if self._dropped_columns else ""
        return ConfigError(
            f"{name} returned no loss: the batch has no labels (it holds {sorted(inputs)}).{dropped} Add a "
            f"'labels' (or 'label') column holding the targets, or set label_names to the column that does.")

    def _check_labels(self, inputs):
        """Fail early, with the fix, when labels are absent or outside the model's label range."""
        if self.label_names and not self.can_return_loss and self.compute_loss_func is None and \
                not any(inputs.get(name) is not None for name in self.label_names):
            raise self._missing_labels_error(inputs)
        labels = inputs.get("labels")
        config = getattr(unwrap_model(self.model), "config", None)
        num_labels = getattr(config, "num_labels", None)
        head = type(unwrap_model(self.model)).__name__
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or not num_labels or num_labels < 2 \
                or not head.endswith(("ForSequenceClassification", "ForTokenClassification")):
            return
        valid = labels[labels != -100]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_labels):
            bad = int(valid.max()) if int(valid.max()) >= num_labels else int(valid.min())
            raise ConfigError(
                f"Label {bad} is outside the {num_labels} labels of {head} (valid: 0..{num_labels - 1}). Load the "
                f"model with num_labels matching the dataset (and id2label/label2id), or map the dataset's labels "
                "into that range.")

    def floating_point_ops(self, inputs) -> int:
        main = getattr(self.model, "main_input_name", "input_ids")
        if main in inputs and hasattr(self.model, "num_parameters"):
            if not hasattr(self, "_flop_params"):
                self._flop_params = unwrap_model(self.model).num_parameters(exclude_embeddings=True)
            return 6 * inputs[main].numel() * self._flop_params
        return 0

    def store_flos(self):
        flos = torch.tensor(float(self.current_flos), dtype=torch.float64, device=self.args.device)
        self.state.total_flos += float(sum_across_processes(flos)) if self.args.world_size > 1 else self.current_flos
        self.current_flos = 0

    # ------------------------------------------------------------------ logging, evaluation and saving in the loop
    def log(self, logs: dict, start_time: float | None = None):
        if self.state.epoch is not None:
            logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs)

    def _maybe_log_save_evaluate(self, model, ignore_keys, start_time):
        if self.control.should_log and self.state.global_step > self._globalstep_last_logged:
            loss = mean_across_processes(self._tr_loss).item()
            self._tr_loss -= self._tr_loss
            logs = {"loss": loss / (self.state.global_step - self._globalstep_last_logged)}
            grad_norm = getattr(self, "_grad_norm", None)
            if grad_norm is not None:
                logs["grad_norm"] = grad_norm.item() if isinstance(grad_norm, torch.Tensor) else grad_norm
            learning_rate = getattr(self, "_learning_rate", None)
            logs["learning_rate"] = learning_rate if learning_rate is not None else self._get_learning_rate()
            self._total_loss_scalar += loss
            self._globalstep_last_logged = self.state.global_step
            self.store_flos()
            self.log(logs, start_time)
        if self.control.should_evaluate:
            metrics = self._evaluate(ignore_keys)
            is_best = self._determine_best_metric(metrics)
            if self.args.save_strategy == SaveStrategy.BEST:
                self.control.should_save = is_best
        if self.control.should_save:
            self._save_checkpoint(model)
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)

    def _evaluate(self, ignore_keys, skip_scheduler: bool = False):
        metrics = self.evaluate(ignore_keys=ignore_keys)
        if isinstance(self.lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and not skip_scheduler:
            self.lr_scheduler.step(metrics[self._metric_key(metrics)])
        return metrics

    def _metric_key(self, metrics) -> str:
        name = self.args.metric_for_best_model
        name = name if name.startswith("eval_") else f"eval_{name}"
        if name not in metrics:
            raise ConfigError(f"metric_for_best_model={self.args.metric_for_best_model!r} is not among the "
                              f"evaluation metrics {sorted(metrics)}; return it from compute_metrics or pick one "
                              "of those.")
        return name

    def _determine_best_metric(self, metrics) -> bool:
        if self.args.metric_for_best_model is None:
            return False
        value = metrics[self._metric_key(metrics)]
        best = self.state.best_metric
        if best is None:
            best = float("-inf") if self.args.greater_is_better else float("inf")
        if (value > best) if self.args.greater_is_better else (value < best):
            self.state.best_metric = value
            if self.args.save_strategy != SaveStrategy.NO:
                self.state.best_global_step = self.state.global_step
            return True
        return False

    def _save_checkpoint(self, model):
        folder = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        self.store_flos()
        self.save_model(folder, _internal_call=True)
        if self.state.best_global_step:
            barrier()
            best = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}")
            if os.path.exists(best):
                self.state.best_model_checkpoint = best
        if not self.args.save_only_model:
            self._save_optimizer_and_scheduler(folder)
            ckpt.save_rng_state(folder, self.args)
        if self.args.should_save:
            for callback in self._stateful_callbacks():
                self.state.stateful_callbacks[type(callback).__name__] = callback.state()
            self.state.save_to_json(os.path.join(folder, ckpt.TRAINER_STATE_NAME))
            rotate_checkpoints(self.args.output_dir, self.args.save_total_limit, self.state.best_model_checkpoint)
        barrier()

    def _save_optimizer_and_scheduler(self, folder):
        optimizer_state = optimizer_state_dict(self.model_wrapped, self.optimizer)  # collective under FSDP
        if not self.args.should_save:
            return
        os.makedirs(folder, exist_ok=True)
        torch.save(optimizer_state, os.path.join(folder, ckpt.OPTIMIZER_NAME))
        ckpt.save_scheduler(folder, self.lr_scheduler)
        if self.scaler is not None:
            torch.save(self.scaler.state_dict(), os.path.join(folder, ckpt.SCALER_NAME))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Write the model (save_pretrained layout), the tokenizer if known, and training_args.bin (rank 0 only)."""
        output_dir = output_dir or self.args.output_dir
        state_dict = model_state_dict(self.model_wrapped)  # full weights; every rank takes part under FSDP
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = unwrap_model(self.model)
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(output_dir, state_dict=state_dict)
        else:
            from safetensors.torch import save_file

            state = state_dict if state_dict is not None else model.state_dict()
            save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(output_dir, "model.safetensors"),
                      metadata={"format": "pt"})
        tokenizer = self.processing_class or getattr(self.data_collator, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "save_pretrained"):
            tokenizer.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, ckpt.TRAINING_ARGS_NAME))

    def _load_best_model(self):
        best = self.state.best_model_checkpoint
        logger.info("Loading the best model from %s (score %s).", best, self.state.best_metric)
        if is_fsdp(self.model_wrapped):
            from .distributed import load_full_state_dict

            load_full_state_dict(self.model_wrapped, best)
        else:
            ckpt.load_model_weights(unwrap_model(self.model), best)

    def _finish_training(self, start_time, max_steps, batches_per_epoch):
        self._total_loss_scalar += mean_across_processes(self._tr_loss).item()
        steps = self.state.global_step - self._initial_global_step
        train_loss = self._total_loss_scalar / max(steps, 0.001)
        total_batch = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        metrics = speed_metrics("train", start_time, num_samples=steps * total_batch, num_steps=steps)
        self.store_flos()
        metrics["total_flos"] = self.state.total_flos
        metrics["train_loss"] = train_loss
        self.log(metrics)
        if self.args.load_best_model_at_end and self.state.best_model_checkpoint is not None:
            barrier()
            self._load_best_model()
        best = self.state.best_model_checkpoint
        if self.args.should_save and best is not None and self.args.save_total_limit == 1:
            for folder in sorted_checkpoints(self.args.output_dir, best):
                if not os.path.samefile(folder, best):
                    shutil.rmtree(folder, ignore_errors=True)
        self.control = self.callback_handler.on_train_end(self.args, self.state, self.control)
        return TrainOutput(self.state.global_step, train_loss, metrics)

    # ------------------------------------------------------------------ state
    def save_state(self):
        """Write trainer_state.json to output_dir (rank 0)."""
        if self.args.should_save:
            self.state.save_to_json(os.path.join(self.args.output_dir, ckpt.TRAINER_STATE_NAME))

    def log_metrics(self, split: str, metrics: dict):
        """Print a split's metrics, one per line (main process only)."""
        if not self.is_world_process_zero():
            return
        print(f"***** {split} metrics *****")
        width = max((len(k) for k in metrics), default=0)
        for key in sorted(metrics):
            value = metrics[key]
            print(f"  {key: <{width}} = {round(value, 4) if isinstance(value, float) else value}")

    def save_metrics(self, split: str, metrics: dict, combined: bool = True):
        """Write `<split>_results.json` (and merge into all_results.json) in output_dir, on the main process."""
        if not self.is_world_process_zero():
            return
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(os.path.join(self.args.output_dir, f"{split}_results.json"), "w") as f:
            json.dump(metrics, f, indent=4, sort_keys=True)
        if combined:
            path = os.path.join(self.args.output_dir, "all_results.json")
            merged = {}
            if os.path.exists(path):
                with open(path) as f:
                    merged = json.load(f)
            merged.update(metrics)
            with open(path, "w") as f:
                json.dump(merged, f, indent=4, sort_keys=True)

    def num_examples(self, dataloader) -> int:
        try:
            return len(dataloader.dataset)
        except (TypeError, AttributeError):
            return len(dataloader) * self.args.per_device_train_batch_size
