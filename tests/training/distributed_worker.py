"""Training script run by test_distributed.py, once in-process and once under `torchrun --nproc_per_node=2`.

usage: distributed_worker.py MODEL_DIR OUT_DIR PER_DEVICE_BATCH MODE [MODE ...]   (MODE: ddp, fsdp, fsdp_resume)
Each rank writes OUT_DIR/<mode>/rank<r>.json with what it saw; rank 0 alone saves the model.
"""

from __future__ import annotations

import json
import os
import sys

import torch

import leanformers
from leanformers import Trainer, TrainerCallback, TrainingArguments

NUM_TRAIN, NUM_EVAL, MAX_STEPS = 48, 11, 6


def data(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(3, 99, (8,), generator=g).tolist(),
             "labels": int(torch.randint(0, 3, (1,), generator=g))} for _ in range(n)]


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def metrics(prediction):
    logits, labels = prediction
    return {"count": len(labels), "accuracy": float((logits.argmax(-1) == labels).mean())}


def trainer(model_dir, out_dir, batch: int, fsdp: str | None, callbacks=()):
    model = leanformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    args = TrainingArguments(output_dir=out_dir, per_device_train_batch_size=batch, per_device_eval_batch_size=3,
                             max_steps=MAX_STEPS, learning_rate=1e-3, weight_decay=0.01, warmup_steps=2,
                             logging_steps=1, save_strategy="steps", save_steps=3, disable_tqdm=True, seed=3,
                             fsdp=fsdp)
    return Trainer(model=model, args=args, train_dataset=data(NUM_TRAIN, 1), eval_dataset=data(NUM_EVAL, 2),
                   compute_metrics=metrics, callbacks=list(callbacks))


def run(model_dir, out_dir, batch: int, mode: str) -> dict:
    """Train in `mode`; returns (and writes, per rank) the evaluation metrics and the run's facts."""
    folder = os.path.join(out_dir, mode)
    fsdp = "full_shard" if mode.startswith("fsdp") else None
    if mode == "fsdp_resume":
        trainer(model_dir, folder, batch, fsdp, [StopAt(3)]).train()
        job = trainer(model_dir, folder, batch, fsdp)
        job.train(resume_from_checkpoint=True)
    else:
        job = trainer(model_dir, folder, batch, fsdp)
        job.train()
    result = {"metrics": job.evaluate(), "rank": job.args.process_index, "world_size": job.args.world_size,
              "should_save": job.args.should_save, "losses": [h["loss"] for h in job.state.log_history if "loss" in h]}
    job.save_model(os.path.join(folder, "final"))
    with open(os.path.join(folder, f"rank{result['rank']}.json"), "w") as f:
        json.dump(result, f)
    return result


if __name__ == "__main__":
    model_dir, out_dir, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for mode in sys.argv[4:]:
        run(model_dir, out_dir, batch, mode)
