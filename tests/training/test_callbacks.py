"""Callbacks: the same events, in the same order, with the same state, as the reference Trainer; progress output."""

from __future__ import annotations

import pytest

from .conftest import accuracy, classification_data, default_args, run_trainer

EVENTS = ("on_init_end", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_step_begin",
          "on_pre_optimizer_step", "on_optimizer_step", "on_substep_end", "on_step_end", "on_evaluate",
          "on_predict", "on_save", "on_log", "on_prediction_step")


def recorder(base):
    """A callback class (subclass of `base`) that records (event, global_step, epoch, extra) for every event."""

    class Recorder(base):
        def __init__(self):
            self.events = []

    def make(event):
        def handler(self, args, state, control, **kwargs):
            extra = sorted(kwargs.get("metrics") or kwargs.get("logs") or {})
            extra = [k for k in extra if not k.endswith(("runtime", "per_second"))]
            self.events.append((event, state.global_step, round(state.epoch or 0, 6), tuple(extra)))
        return handler

    for event in EVENTS:
        setattr(Recorder, event, make(event))
    return Recorder


def test_callback_events_match_reference(tiny_bert_dir, tmp_path):
    import transformers

    import leanformers

    train, held_out = classification_data(20), classification_data(6, seed=2)
    recorded = {}
    for name, lib in (("ours", leanformers), ("reference", transformers)):
        callback = recorder(lib.TrainerCallback)()
        args = default_args(tmp_path / name, gradient_accumulation_steps=2, num_train_epochs=2, logging_steps=2,
                            eval_strategy="steps", eval_steps=3, save_strategy="epoch", logging_first_step=True)
        trainer = run_trainer(name, tiny_bert_dir, train, args, eval_dataset=held_out, compute_metrics=accuracy,
                              callbacks=[callback])
        trainer.predict(held_out)
        recorded[name] = callback.events
    assert recorded["ours"] == recorded["reference"]
    names = {event for event, *_ in recorded["ours"]}
    assert names == set(EVENTS)


def test_callbacks_can_stop_and_steer_training(tiny_bert_dir, tmp_path):
    import leanformers

    class StopAfterEval(leanformers.TrainerCallback):
        def on_evaluate(self, args, state, control, metrics, **kwargs):
            control.should_training_stop = True

    args = default_args(tmp_path, max_steps=10, eval_strategy="steps", eval_steps=2)
    trainer = run_trainer("ours", tiny_bert_dir, classification_data(20), args,
                          eval_dataset=classification_data(4, seed=3), callbacks=[StopAfterEval])
    assert trainer.state.global_step == 2
    assert trainer.pop_callback(StopAfterEval) is not None
    assert "StopAfterEval" not in trainer.callback_handler.callback_list


def test_progress_bar_and_printed_logs(tiny_bert_dir, tmp_path, capsys):
    args = default_args(tmp_path / "bar", max_steps=3, disable_tqdm=False)
    trainer = run_trainer("ours", tiny_bert_dir, classification_data(12), args)
    assert type(trainer.callback_handler.callbacks[-1]).__name__ == "ProgressCallback"
    captured = capsys.readouterr()
    assert "3/3" in captured.err
    assert "'loss':" in captured.out + captured.err
    run_trainer("ours", tiny_bert_dir, classification_data(12), default_args(tmp_path / "quiet", max_steps=2))
    printed = capsys.readouterr()
    assert "2/2" not in printed.err and "'learning_rate':" in printed.out


def test_log_history_records_every_log(tiny_bert_dir, tmp_path):
    args = default_args(tmp_path, max_steps=4, logging_steps=2, eval_strategy="steps", eval_steps=4)
    trainer = run_trainer("ours", tiny_bert_dir, classification_data(16), args,
                          eval_dataset=classification_data(4, seed=2))
    history = trainer.state.log_history
    assert [h["step"] for h in history] == [2, 4, 4, 4]
    assert set(history[0]) == {"loss", "grad_norm", "learning_rate", "epoch", "step"}
    assert "eval_loss" in history[2] and "train_loss" in history[3]
    assert history[3]["train_loss"] == pytest.approx((history[0]["loss"] + history[1]["loss"]) / 2)
