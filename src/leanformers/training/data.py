"""Datasets to DataLoaders: unused-column removal, seeded (distributed) sampling, skipping on resume, sharded eval."""

from __future__ import annotations

import inspect
import logging

import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, IterableDataset, SequentialSampler

from ..errors import ConfigError
from .utils import has_length, set_seed

logger = logging.getLogger(__name__)


def is_hf_dataset(dataset) -> bool:
    """A `datasets.Dataset` (checked without importing the datasets package)."""
    return type(dataset).__module__.split(".")[0] == "datasets" and hasattr(dataset, "column_names")


def find_labels(model_class) -> list[str]:
    """The label arguments of a model's forward(): those named like 'label', plus QA's start/end positions."""
    params = inspect.signature(model_class.forward).parameters
    if "QuestionAnswering" in model_class.__name__:
        return [p for p in params if "label" in p or p in ("start_positions", "end_positions")]
    return [p for p in params if "label" in p]


def signature_columns(model, label_names) -> list[str]:
    """Dataset fields the model can take: its forward() arguments, plus label / label_ids (renamed by collators)."""
    columns = list(inspect.signature(model.forward).parameters)
    return columns + sorted({"label", "label_ids", *label_names} - set(columns))


def remove_unused_columns(dataset, columns: list[str], description: str):
    """Drop the columns of a `datasets.Dataset` that the model does not take; returns (dataset, dropped names)."""
    dropped = [c for c in dataset.column_names if c not in columns]
    if not any(c in columns for c in dataset.column_names):
        raise ConfigError(
            f"No column of the {description} dataset ({', '.join(dataset.column_names)}) is an argument of the "
            f"model's forward() ({', '.join(columns)}). Tokenise the text into input_ids first, or pass "
            "remove_unused_columns=False if a custom data_collator builds the inputs.")
    if dropped:
        logger.info("Columns %s of the %s dataset are not model arguments and were dropped.", dropped, description)
        dataset = dataset.remove_columns(dropped)
    return dataset, dropped


class SkipBatchSampler(BatchSampler):
    """The batches of another batch sampler, minus the first `skip_batches` (resuming mid-epoch)."""

    def __init__(self, batch_sampler, skip_batches: int = 0):
        self.batch_sampler = batch_sampler
        self.skip_batches = skip_batches

    def __iter__(self):
        for index, batch in enumerate(self.batch_sampler):
            if index >= self.skip_batches:
                yield batch

    def __len__(self):
        return len(self.batch_sampler) - self.skip_batches


class ShardedEvalBatchSampler(BatchSampler):
    """Consecutive batches dealt round-robin to the ranks (rank r gets batches r, r+W, ...), so that gathering the
    ranks' outputs step by step rebuilds the dataset order. Every rank takes the same number of steps: in the last
    round a rank may get a short batch, or, past the end, a one-example stand-in whose outputs are discarded
    (`valid_sizes` says how many examples of each step count)."""

    def __init__(self, num_samples: int, batch_size: int, num_replicas: int, rank: int):
        self.num_samples, self.batch_size = num_samples, batch_size
        self.num_replicas, self.rank = num_replicas, rank

    def __len__(self):
        batches = -(-self.num_samples // self.batch_size)
        return -(-batches // self.num_replicas)

    def _bounds(self, step: int) -> tuple[int, int]:
        start = (step * self.num_replicas + self.rank) * self.batch_size
        return start, min(start + self.batch_size, self.num_samples)

    @property
    def valid_sizes(self) -> list[int]:
        return [max(0, end - start) for start, end in map(self._bounds, range(len(self)))]

    def __iter__(self):
        for step in range(len(self)):
            start, end = self._bounds(step)
            yield list(range(start, end)) if end > start else [0]


class IterableShard(IterableDataset):
    """Each rank's share of an iterable dataset: rank r keeps the r-th of every W consecutive batches."""

    def __init__(self, dataset, batch_size: int, num_replicas: int, rank: int):
        self.dataset, self.batch_size = dataset, batch_size
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        chunk = []
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for item in self.dataset:
            chunk.append(item)
            if len(chunk) == self.batch_size * self.num_replicas:
                yield from chunk[lo:hi]
                chunk = []


def _worker_init(worker_id: int, num_workers: int, rank: int):
    # a distinct seed per worker and rank, derived from the torch seed the DataLoader gives each worker
    set_seed(torch.initial_seed() % 2**32 + worker_id + num_workers * rank)


def dataloader_kwargs(args, collate_fn, training: bool) -> dict:
    """DataLoader options from TrainingArguments."""
    kwargs = {"collate_fn": collate_fn, "num_workers": args.dataloader_num_workers,
              "pin_memory": args.dataloader_pin_memory and args.device.type == "cuda",
              "persistent_workers": args.dataloader_persistent_workers and args.dataloader_num_workers > 0}
    if args.dataloader_prefetch_factor is not None:
        kwargs["prefetch_factor"] = args.dataloader_prefetch_factor
    if training and args.dataloader_num_workers > 0:
        from functools import partial

        kwargs["worker_init_fn"] = partial(_worker_init, num_workers=args.dataloader_num_workers,
                                           rank=args.process_index)
    return kwargs


def train_sampler(dataset, args):
    """A shuffling sampler whose order depends only on (data_seed or seed) + epoch, split across the ranks.

    With one process this is the same order as Transformers' seedable sampler (randperm seeded by seed + epoch),
    so batches match; with W processes each step sees the same examples as one process with a W-times batch.
    """
    return DistributedSampler(dataset, num_replicas=args.world_size, rank=args.process_index,
                              shuffle=args.train_sampling_strategy == "random",
                              seed=args.data_seed if args.data_seed is not None else args.seed)


def build_train_dataloader(dataset, args, collate_fn, skip_batches: int = 0, epoch: int = 0):
    """The training DataLoader for one epoch (skipping `skip_batches` batches when resuming mid-epoch)."""
    kwargs = dataloader_kwargs(args, collate_fn, training=True)
    batch_size = args.train_batch_size
    if isinstance(dataset, IterableDataset):
        if args.world_size > 1:
            dataset = IterableShard(dataset, batch_size, args.world_size, args.process_index)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        return DataLoader(dataset, batch_size=batch_size, drop_last=args.dataloader_drop_last, **kwargs)
    sampler = train_sampler(dataset, args)
    sampler.set_epoch(epoch)
    batches = BatchSampler(sampler, batch_size, args.dataloader_drop_last)
    if skip_batches:
        batches = SkipBatchSampler(batches, skip_batches)
    return DataLoader(dataset, batch_sampler=batches, **kwargs)


def num_train_batches(dataset, args) -> int | None:
    """Batches per epoch on this rank, or None for datasets without a length."""
    if isinstance(dataset, IterableDataset) or not has_length(dataset):
        return None
    per_rank = -(-len(dataset) // args.world_size)
    if args.dataloader_drop_last:
        return per_rank // args.train_batch_size
    return -(-per_rank // args.train_batch_size)


def build_eval_dataloader(dataset, args, collate_fn) -> DataLoader:
    """Sequential batches; with several processes, whole batches dealt round-robin (see ShardedEvalBatchSampler)."""
    kwargs = dataloader_kwargs(args, collate_fn, training=False)
    batch_size = args.eval_batch_size
    if isinstance(dataset, IterableDataset):
        if args.world_size > 1:
            dataset = IterableShard(dataset, batch_size, args.world_size, args.process_index)
        return DataLoader(dataset, batch_size=batch_size, **kwargs)
    if args.world_size > 1:
        sampler = ShardedEvalBatchSampler(len(dataset), batch_size, args.world_size, args.process_index)
        return DataLoader(dataset, batch_sampler=sampler, **kwargs)
    return DataLoader(dataset, sampler=SequentialSampler(dataset), batch_size=batch_size,
                      drop_last=args.dataloader_drop_last, **kwargs)


def prefetched(iterable):
    """Yield items while already holding the next one, so the end of the data is known one item early.

    Keeps collation (and any random masking in it) in the same order relative to the model's steps as
    Transformers' data loading, which also reads one batch ahead.
    """
    iterator = iter(iterable)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for upcoming in iterator:
        yield current
        current = upcoming
    yield current
