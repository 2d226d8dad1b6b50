"""Dataset views that feed one column (or a pair of columns) of a dataset to a pipeline, lazily."""

from __future__ import annotations

from torch.utils.data import Dataset


class KeyDataset(Dataset):
    """`dataset[i][key]` for each row: `pipe(KeyDataset(ds, "text"), batch_size=32)` streams a text column."""

    def __init__(self, dataset, key: str):
        self.dataset = dataset
        self.key = key

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][self.key]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


class KeyPairDataset(Dataset):
    """{"text": row[key1], "text_pair": row[key2]} for each row (sentence-pair classification)."""

    def __init__(self, dataset, key1: str, key2: str):
        self.dataset = dataset
        self.key1 = key1
        self.key2 = key2

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        row = self.dataset[i]
        return {"text": row[self.key1], "text_pair": row[self.key2]}

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
