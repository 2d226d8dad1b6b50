"""Trainer state, control flags and callbacks: the hooks that decide when to log, evaluate, save and stop."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass

from ..errors import ConfigError
from .arguments import IntervalStrategy, SaveStrategy
from .utils import has_length

logger = logging.getLogger(__name__)


class ExportableState:
    """A callback whose state is written into trainer_state.json at each checkpoint and restored on resume."""

    def state(self) -> dict:
        raise NotImplementedError("An ExportableState callback must implement state().")

    @classmethod
    def from_state(cls, state: dict):
        instance = cls(**state["args"])
        for key, value in state["attributes"].items():
            setattr(instance, key, value)
        return instance


@dataclass
class TrainerState:
    """Progress of a run (steps, epoch, logs, best metric); saved as trainer_state.json in every checkpoint."""

    epoch: float | None = 0
    global_step: int = 0
    max_steps: int = 0
    logging_steps: int = 500
    eval_steps: int = 500
    save_steps: int = 500
    train_batch_size: int | None = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0
    log_history: list = None
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: str | None = None
    trial_params: dict | None = None
    stateful_callbacks: list | dict | None = None

    def __post_init__(self):
        if self.log_history is None:
            self.log_history = []
        if self.stateful_callbacks is None:
            self.stateful_callbacks = {}
        elif not isinstance(self.stateful_callbacks, dict):
            states = {}
            for callback in self.stateful_callbacks:
                if not isinstance(callback, ExportableState):
                    raise ConfigError(f"{type(callback).__name__} must inherit ExportableState to be saved.")
                name = type(callback).__name__
                if name in states:
                    states[name] = (states[name] if isinstance(states[name], list) else [states[name]])
                    states[name].append(callback.state())
                else:
                    states[name] = callback.state()
            self.stateful_callbacks = states

    def save_to_json(self, json_path):
        with open(json_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_from_json(cls, json_path):
        with open(json_path, encoding="utf-8") as f:
            return cls(**json.load(f))

    def compute_steps(self, args, max_steps: int):
        """Absolute logging/eval/save intervals (fractions below 1 are shares of `max_steps`)."""
        for kind in ("logging", "eval", "save"):
            steps = getattr(args, f"{kind}_steps")
            if steps is not None:
                setattr(self, f"{kind}_steps", math.ceil(max_steps * steps) if steps < 1 else steps)


@dataclass
class TrainerControl(ExportableState):
    """Flags callbacks set to steer the loop: log, evaluate, save now; stop the epoch or the run."""

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self):
        self.should_training_stop = False

    def _new_epoch(self):
        self.should_epoch_stop = False

    def _new_step(self):
        self.should_save = self.should_evaluate = self.should_log = False

    def state(self) -> dict:
        return {"args": dataclasses.asdict(self), "attributes": {}}


class TrainerCallback:
    """Base class: override the events you need. Each receives (args, state, control, **kwargs) where kwargs holds
    model, processing_class, optimizer, lr_scheduler, train_dataloader, eval_dataloader (and metrics / logs).
    Return a TrainerControl (or None to keep it)."""

    def on_init_end(self, args, state, control, **kwargs): pass
    def on_train_begin(self, args, state, control, **kwargs): pass
    def on_train_end(self, args, state, control, **kwargs): pass
    def on_epoch_begin(self, args, state, control, **kwargs): pass
    def on_epoch_end(self, args, state, control, **kwargs): pass
    def on_step_begin(self, args, state, control, **kwargs): pass
    def on_pre_optimizer_step(self, args, state, control, **kwargs): pass
    def on_optimizer_step(self, args, state, control, **kwargs): pass
    def on_substep_end(self, args, state, control, **kwargs): pass
    def on_step_end(self, args, state, control, **kwargs): pass
    def on_evaluate(self, args, state, control, **kwargs): pass
    def on_predict(self, args, state, control, metrics, **kwargs): pass
    def on_save(self, args, state, control, **kwargs): pass
    def on_log(self, args, state, control, **kwargs): pass
    def on_prediction_step(self, args, state, control, **kwargs): pass


class CallbackHandler(TrainerCallback):
    """Calls the registered callbacks in order for each event, threading the control object through them."""

    def __init__(self, callbacks, model, processing_class, optimizer, lr_scheduler):
        self.callbacks = []
        for callback in callbacks:
            self.add_callback(callback)
        self.model, self.processing_class = model, processing_class
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.train_dataloader = self.eval_dataloader = None

    def add_callback(self, callback):
        instance = callback() if isinstance(callback, type) else callback
        if type(instance) in [type(c) for c in self.callbacks]:
            logger.warning("Adding %s a second time; the current callbacks are %s.", type(instance).__name__,
                           [type(c).__name__ for c in self.callbacks])
        self.callbacks.append(instance)

    def pop_callback(self, callback):
        for existing in self.callbacks:
            if existing is callback or (isinstance(callback, type) and isinstance(existing, callback)):
                self.callbacks.remove(existing)
                return existing
        return None

    def remove_callback(self, callback):
        self.pop_callback(callback)

    @property
    def callback_list(self) -> str:
        return "\n".join(type(c).__name__ for c in self.callbacks)

    def on_train_begin(self, args, state, control, **kwargs):
        control.should_training_stop = False
        return self.call_event("on_train_begin", args, state, control, **kwargs)

    def on_epoch_begin(self, args, state, control, **kwargs):
        control.should_epoch_stop = False
        return self.call_event("on_epoch_begin", args, state, control, **kwargs)

    def on_step_begin(self, args, state, control, **kwargs):
        control._new_step()
        return self.call_event("on_step_begin", args, state, control, **kwargs)

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        control.should_evaluate = False
        return self.call_event("on_evaluate", args, state, control, metrics=metrics, **kwargs)

    def on_predict(self, args, state, control, metrics, **kwargs):
        return self.call_event("on_predict", args, state, control, metrics=metrics, **kwargs)

    def on_save(self, args, state, control, **kwargs):
        control.should_save = False
        return self.call_event("on_save", args, state, control, **kwargs)

    def on_log(self, args, state, control, logs, **kwargs):
        control.should_log = False
        return self.call_event("on_log", args, state, control, logs=logs, **kwargs)

    def call_event(self, event, args, state, control, **kwargs):
        for callback in self.callbacks:
            result = getattr(callback, event)(
                args, state, control, model=self.model, processing_class=self.processing_class,
                optimizer=self.optimizer, lr_scheduler=self.lr_scheduler, train_dataloader=self.train_dataloader,
                eval_dataloader=self.eval_dataloader, **kwargs)
            if result is not None:
                control = result
        return control


def _plain_event(event):
    def handler(self, args, state, control, **kwargs):
        return self.call_event(event, args, state, control, **kwargs)
    handler.__name__ = event
    return handler


for _event in ("on_init_end", "on_train_end", "on_epoch_end", "on_pre_optimizer_step", "on_optimizer_step",
               "on_substep_end", "on_step_end", "on_prediction_step"):
    setattr(CallbackHandler, _event, _plain_event(_event))


class DefaultFlowCallback(TrainerCallback):
    """Turns the logging/eval/save strategies of the arguments into control flags at step and epoch ends."""

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        if step == 1 and args.logging_first_step:
            control.should_log = True
        if args.logging_strategy == IntervalStrategy.STEPS and step % state.logging_steps == 0:
            control.should_log = True
        steps_eval = args.eval_strategy == IntervalStrategy.STEPS and args.eval_delay <= step
        if steps_eval and step % state.eval_steps == 0:
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.STEPS and state.save_steps > 0 and step % state.save_steps == 0:
            control.should_save = True
        if step >= state.max_steps:
            control.should_training_stop = True
            if steps_eval and step % state.eval_steps != 0:
                control.should_evaluate = True  # a final evaluation of the finished model
            if args.save_strategy == SaveStrategy.STEPS:
                control.should_save = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.logging_strategy == IntervalStrategy.EPOCH:
            control.should_log = True
        if args.eval_strategy == IntervalStrategy.EPOCH and args.eval_delay <= state.epoch:
            control.should_evaluate = True
        if args.save_strategy == SaveStrategy.EPOCH:
            control.should_save = True
        return control


def _format_logs(logs: dict, max_len: int = 100) -> dict:
    shown = {}
    for key, value in logs.items():
        if key == "total_flos":
            continue
        if isinstance(value, str) and len(value) > max_len:
            value = f"[string of length {len(value)}]"
        shown[key] = f"{value:.4g}" if isinstance(value, float) else value
    return shown


class ProgressCallback(TrainerCallback):
    """A tqdm bar over optimiser steps (and one over evaluation batches) on the main process; logs are printed."""

    def __init__(self, max_str_len: int = 100):
        self.training_bar = self.prediction_bar = None
        self.max_str_len = max_str_len
        self.current_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero:
            self.training_bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True)
        self.current_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.update(state.global_step - self.current_step)
            self.current_step = state.global_step

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        from tqdm.auto import tqdm

        if state.is_world_process_zero and has_length(eval_dataloader):
            if self.prediction_bar is None:
                self.prediction_bar = tqdm(total=len(eval_dataloader), leave=self.training_bar is None,
                                           dynamic_ncols=True)
            self.prediction_bar.update(1)

    def _close_prediction(self, state):
        if state.is_world_process_zero and self.prediction_bar is not None:
            self.prediction_bar.close()
        self.prediction_bar = None

    def on_evaluate(self, args, state, control, **kwargs):
        self._close_prediction(state)

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        self._close_prediction(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.write(str(_format_logs(logs, self.max_str_len)))

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None:
            self.training_bar.close()
        self.training_bar = None


class PrinterCallback(TrainerCallback):
    """Prints each log dict (used instead of the progress bar when disable_tqdm=True)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            # dropped from the caller's dict, as transformers does: train()'s metrics then lack it too
            logs.pop("total_flos", None)
        if state.is_local_process_zero and logs is not None:
            print(_format_logs(logs))


class EarlyStoppingCallback(TrainerCallback, ExportableState):
    """Stop training once `metric_for_best_model` has not improved (by more than `early_stopping_threshold`)
    for `early_stopping_patience` evaluations in a row."""

    def __init__(self, early_stopping_patience: int = 1, early_stopping_threshold: float | None = 0.0):
        self.early_stopping_patience = early_stopping_patience
        self.early_stopping_threshold = early_stopping_threshold or 0.0
        self.early_stopping_patience_counter = 0

    def check_metric_value(self, args, state, control, metric_value):
        best = state.best_metric
        better = best is None or ((metric_value > best) if args.greater_is_better else (metric_value < best))
        if better and (best is None or abs(metric_value - best) > self.early_stopping_threshold):
            self.early_stopping_patience_counter = 0
        else:
            self.early_stopping_patience_counter += 1

    def on_train_begin(self, args, state, control, **kwargs):
        if args.metric_for_best_model is None:
            raise ConfigError("EarlyStoppingCallback needs metric_for_best_model (e.g. 'loss' or 'accuracy').")
        if args.eval_strategy == IntervalStrategy.NO:
            raise ConfigError("EarlyStoppingCallback needs evaluations: set eval_strategy to 'steps' or 'epoch'.")
        if not args.load_best_model_at_end:
            logger.warning("EarlyStoppingCallback without load_best_model_at_end=True keeps the last model, "
                           "not the best one.")

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        name = args.metric_for_best_model
        name = name if name.startswith("eval_") else f"eval_{name}"
        value = metrics.get(name)
        if value is None:
            logger.warning("Early stopping needs %s in the evaluation metrics, which has only %s; it is disabled.",
                           name, sorted(metrics))
            return
        self.check_metric_value(args, state, control, value)
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True

    def state(self) -> dict:
        return {"args": {"early_stopping_patience": self.early_stopping_patience,
                         "early_stopping_threshold": self.early_stopping_threshold},
                "attributes": {"early_stopping_patience_counter": self.early_stopping_patience_counter}}
