"""Shared pieces of the training tests: tiny reference-saved checkpoints, toy data, runs of either Trainer."""

from __future__ import annotations

import warnings

import pytest
import torch

NUM_LABELS = 3
SEQ = 10
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2)


def save_reference_model(class_name: str, config_class_name: str, folder, seed: int = 0, **config_kwargs):
    """Build a tiny random model with the reference transformers and save it to `folder`."""
    import transformers

    torch.manual_seed(seed)
    config = getattr(transformers, config_class_name)(**config_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(transformers, class_name)(config).save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A tiny random BertForSequenceClassification (3 labels, dropout on) saved by the reference."""
    folder = tmp_path_factory.mktemp("tiny_bert")
    save_reference_model("BertForSequenceClassification", "BertConfig", folder, seed=0, num_labels=NUM_LABELS,
                         **TINY)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A tiny random GPT2LMHeadModel saved by the reference."""
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    save_reference_model("GPT2LMHeadModel", "GPT2Config", folder, seed=0, vocab_size=99, n_embd=32, n_layer=2,
                         n_head=4, n_positions=64)
    return folder


def classification_data(n: int, seed: int = 1, seq: int = SEQ, learnable: bool = False) -> list[dict]:
    """Token ids with right padding (attention_mask) and a class label in 0..2, as a list of dicts.

    Labels are random, or with `learnable` the first token id modulo 3 (so accuracy can rise)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(4, seq + 1, (1,), generator=g))
        ids = torch.randint(3, 99, (seq,), generator=g)
        ids[length:] = 0
        mask = (torch.arange(seq) < length).long()
        label = int(torch.randint(0, NUM_LABELS, (1,), generator=g))
        rows.append({"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                     "labels": int(ids[0]) % NUM_LABELS if learnable else label})
    return rows


def causal_data(n: int, seed: int = 1, seq: int = 12) -> list[dict]:
    """Token ids whose labels are the ids with a random-length tail ignored (-100)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        keep = int(torch.randint(4, seq, (1,), generator=g))
        ids = torch.randint(1, 99, (seq,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": ids[:keep] + [-100] * (seq - keep)})
    return rows


def accuracy(prediction) -> dict:
    logits, labels = prediction
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def default_args(output_dir, **overrides) -> dict:
    """Quiet, deterministic settings shared by both libraries' runs."""
    args = dict(output_dir=str(output_dir), per_device_train_batch_size=4, per_device_eval_batch_size=4,
                learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                seed=7)
    args.update(overrides)
    return args


def run_trainer(library: str, model_dir, train_data, args: dict, head: str = "AutoModelForSequenceClassification",
                model_kwargs: dict | None = None, **trainer_kwargs):
    """Build model + Trainer with `library` ('reference' or 'ours'), train, and return the trainer."""
    if library == "reference":
        import transformers as lib
    else:
        import leanformers as lib
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(lib, head).from_pretrained(model_dir, **(model_kwargs or {}))
        trainer = lib.Trainer(model=model, args=lib.TrainingArguments(**args), train_dataset=train_data,
                              **trainer_kwargs)
        if library == "reference":
            # The reference BERT heads take **kwargs (and ignore num_items_in_batch), which makes its Trainer skip
            # the division by gradient_accumulation_steps; leanformers' heads do not take **kwargs. Both Trainers
            # use the same rule, so align the reference on the mathematically correct scaling.
            trainer.model_accepts_loss_kwargs = trainer.model_accepts_loss_kwargs and "Bert" not in type(model).__name__
        trainer.train()
    return trainer


def step_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "loss" in h]
