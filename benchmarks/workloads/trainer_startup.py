"""Trainer start-up: a two-step Trainer.train() of a tiny BERT classifier in a fresh process.

Three numbers per library: `import_s` (import the library and its Trainer), `train_s` (Trainer(...) and train(), the
figure a user sees as start-up once the library is imported) and `total_s` (both; the METRIC). torch itself is
imported before the clock starts, so only each library's own cost is counted. Start-up is dominated by one-time
imports: torch's optimisers import `torch._dynamo` (about 1.7 s here) on first construction, which transformers
pays inside its own import and leanformers inside the first `train()`.
"""

from __future__ import annotations

import sys
import tempfile
import time

from common import library

NAME = "trainer_startup"
METRIC = ("total_s", "lower")


def cases(quick: bool) -> list[dict]:
    return [{"model": "tiny-bert", "steps": 2}]


def prepare(quick: bool) -> None:
    pass


def measure(lib: str, case: dict, quick: bool) -> dict:
    import torch

    start = time.perf_counter()
    module = library(lib)
    trainer_class, arguments_class = module.Trainer, module.TrainingArguments
    imported = time.perf_counter()
    dynamo_by_import = "torch._dynamo" in sys.modules
    config = module.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=37, num_labels=3)
    torch.manual_seed(0)
    model = module.BertForSequenceClassification(config)
    rows = [{"input_ids": [5, 6, 7, 8], "attention_mask": [1, 1, 1, 1], "labels": i % 3} for i in range(8)]
    with tempfile.TemporaryDirectory() as folder:
        args = arguments_class(output_dir=folder, max_steps=case["steps"], per_device_train_batch_size=4,
                               report_to=[], logging_strategy="no", save_strategy="no", disable_tqdm=True)
        trainer_class(model=model, args=args, train_dataset=rows).train()
    done = time.perf_counter()
    return {"import_s": imported - start, "train_s": done - imported, "total_s": done - start,
            "import_loads_torch_dynamo": dynamo_by_import}
