"""Pipeline: the shared machinery of every task — device placement, parameters, inputs of any shape, and batching
that wastes nothing.

A task turns one input into one or more *features* (`preprocess`), runs the model on a padded batch of features
(`_forward`), and turns the outputs of one input's features back into a result (`postprocess`). A feature is a
dict whose "model_inputs" entry holds the unpadded token-level model inputs (lists of ints); every other entry is
passed through to `postprocess` untouched.

When batch_size > 1, the features of a call are ordered by length, each batch is padded only to its own longest
feature, and each output row is cut back to its feature's own length, so results do not depend on the batch size
or on the batch neighbours (up to float rounding). Results come back in the caller's order.
"""

from __future__ import annotations

import itertools
import os
import types
from contextlib import contextmanager, nullcontext

import torch

from .errors import PipelineInputError

_STREAM_WINDOW_BATCHES = 16  # a stream is sorted by length in windows of this many batches


class Chat:
    """A conversation (list of {"role", "content"} messages) given as one pipeline input."""

    def __init__(self, messages):
        for message in messages:
            if not is_message(message):
                raise PipelineInputError("Every message of a chat must be a dict with 'role' and 'content' keys; "
                                         f"got {message!r}.")
        self.messages = list(messages)


def is_message(value) -> bool:
    return isinstance(value, dict) and "role" in value and "content" in value


def require_text(value, what: str = "input", allow_empty: bool = False) -> str:
    """`value` itself when it is a usable text; a PipelineInputError saying what to pass otherwise."""
    if value is None:
        raise PipelineInputError(f"The {what} is None: pass a string.")
    if not isinstance(value, str):
        raise PipelineInputError(f"The {what} must be a string, not {type(value).__name__} ({value!r:.80}).")
    if not allow_empty and not value.strip():
        raise PipelineInputError(f"The {what} is an empty string: pass some text.")
    return value


def resolve_device(device, model) -> torch.device:
    """The device a pipeline runs on, read like transformers reads `device` (int, str, torch.device, None)."""
    device_map = getattr(model, "hf_device_map", None)
    if device is None:
        device = next(iter(device_map.values())) if device_map else 0
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return torch.device(device)
    if not isinstance(device, int):
        raise PipelineInputError(f"device must be an int, a string or a torch.device, not {device!r}.")
    if device == -1 and getattr(model, "device", None) is not None:
        return model.device
    if device < 0:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device(f"cuda:{device}")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device(f"mps:{device}")
    return torch.device("cpu")


def _is_stream(inputs) -> bool:
    """Inputs that come back as a lazy iterator: generators, datasets and other iterables that are not a list."""
    if isinstance(inputs, (str, bytes, dict, list, tuple, Chat)) or inputs is None:
        return False
    if isinstance(inputs, types.GeneratorType):
        return True
    if isinstance(inputs, torch.utils.data.Dataset):
        return True
    return hasattr(inputs, "__iter__") and hasattr(inputs, "__len__") and hasattr(inputs, "__getitem__")


def _as_chats(inputs):
    """Message lists become Chat objects, the way transformers recognises chat inputs."""
    if isinstance(inputs, types.GeneratorType):
        first = next(inputs, _END)
        if first is _END:
            return []
        if is_message(first):
            return Chat([first, *inputs])
        rest = itertools.chain([first], inputs)
        if isinstance(first, (list, tuple)) and first and is_message(first[0]):
            return (Chat(chat) for chat in rest)
        return (item for item in rest)
    if isinstance(inputs, (list, tuple)) and inputs:
        if is_message(inputs[0]):
            return Chat(inputs)
        if isinstance(inputs[0], (list, tuple)) and all(chat and is_message(chat[0]) for chat in inputs):
            return [Chat(chat) for chat in inputs]
    return inputs


_END = object()


class Pipeline:
    """Base of every task pipeline: call it on one input, a list, a generator or a dataset."""

    task_name = ""                 # the task this class serves by default
    chunked = False                # one input may give several features (QA spans, zero-shot labels, long texts)
    sequence_outputs = ()          # forward outputs with a token axis: cut back to each feature's own length
    default_input_names = None

    def __init__(self, model, tokenizer=None, task: str = "", device=None, binary_output: bool = False,
                 batch_size: int | None = None, num_workers: int | None = None, sort_by_length: bool = True,
                 progress_bar: bool = False, **kwargs):
        for unused in ("args_parser", "torch_dtype", "dtype", "feature_extractor", "image_processor",
                       "processor", "modelcard", "framework"):
            kwargs.pop(unused, None)
        self.task = task or self.task_name
        self.model = model
        self.tokenizer = tokenizer
        self.device = resolve_device(device, model)
        if getattr(model, "hf_device_map", None) is None and getattr(model, "device", self.device) != self.device:
            self.model.to(self.device)
        self.binary_output = binary_output
        self._batch_size = batch_size
        self._num_workers = num_workers
        self.sort_by_length = sort_by_length
        self.progress_bar = progress_bar
        self.call_count = 0
        kwargs = self._setup(kwargs)
        self._preprocess_params, self._forward_params, self._postprocess_params = self._sanitize_parameters(**kwargs)

    def _setup(self, kwargs: dict) -> dict:
        """Hook run before the parameters are read: take task-specific construction arguments out of kwargs."""
        return kwargs

    def __repr__(self):
        return (f"{type(self).__name__}(task={self.task!r}, model={type(self.model).__name__}, "
                f"dtype={str(self.dtype).split('.')[-1]}, device={self.device})")

    # ------------------------------------------------------------------ what subclasses provide
    def _sanitize_parameters(self, **kwargs):
        """Split call/construction keywords into (preprocess, forward, postprocess) parameter dicts."""
        raise NotImplementedError

    def preprocess(self, inputs, **preprocess_params):
        """One input -> one feature (a list of features when `chunked`)."""
        raise NotImplementedError

    def _forward(self, model_inputs: dict, **forward_params) -> dict:
        """A padded batch of model inputs -> a dict of batched outputs (tensors or lists)."""
        raise NotImplementedError

    def postprocess(self, model_outputs, **postprocess_params):
        """The outputs of one input's feature (a list of them when `chunked`) -> the result for that input."""
        raise NotImplementedError

    def _preprocess_many(self, items: list, **preprocess_params) -> list[list[dict]]:
        """Features of many inputs (one list per input); tasks override it to tokenize a whole list at once."""
        out = []
        for item in items:
            features = self.preprocess(item, **preprocess_params)
            out.append(list(features) if self.chunked else [features])
        return out

    # ------------------------------------------------------------------ properties and conveniences
    @property
    def dtype(self):
        return getattr(self.model, "dtype", None)

    @property
    def torch_dtype(self):
        return self.dtype

    def transform(self, X):
        return self(X)

    def predict(self, X):
        return self(X)

    def save_pretrained(self, save_directory, **kwargs):
        """Save the model and the tokenizer in one folder that `pipeline(task, model=folder)` loads back."""
        if os.path.isfile(save_directory):
            raise PipelineInputError(f"{save_directory} is a file: pass a folder to save the pipeline in.")
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, **kwargs)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

    def check_model_type(self, supported_models):
        """Kept for compatibility: the model head is checked when the pipeline is built."""

    @contextmanager
    def device_placement(self):
        """Make the pipeline's accelerator the current one while the model runs."""
        context = torch.cuda.device(self.device) if self.device.type == "cuda" else nullcontext()
        with context:
            yield

    def ensure_tensor_on_device(self, **inputs):
        return _to_device(inputs, self.device)

    # ------------------------------------------------------------------ calling
    def __call__(self, inputs=None, *args, num_workers=None, batch_size=None, sort_by_length=None, **kwargs):
        if args:
            raise PipelineInputError(f"Unexpected positional arguments {args!r}: pass options as keywords.")
        inputs = _as_chats(inputs)
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        pre = {**self._preprocess_params, **pre}
        fwd = {**self._forward_params, **fwd}
        post = {**self._postprocess_params, **post}
        if batch_size is None:
            batch_size = self._batch_size if self._batch_size is not None else 1
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise PipelineInputError(f"batch_size must be a positive int, not {batch_size!r}.")
        self.call_count += 1
        if sort_by_length is not None:
            pre = {**pre, "_sort_by_length": sort_by_length}
        if _is_stream(inputs):
            return self._iterate(inputs, batch_size, pre, fwd, post, stream=True)
        if isinstance(inputs, list):
            return list(self._iterate(inputs, batch_size, pre, fwd, post))
        return next(self._iterate([inputs], batch_size, pre, fwd, post))

    def run_single(self, inputs, preprocess_params, forward_params, postprocess_params):
        return next(self._iterate([inputs], 1, preprocess_params, forward_params, postprocess_params))

    def _iterate(self, items, batch_size, pre, fwd, post, stream: bool = False):
        """Results of `items`, in order; a stream is read in windows so that it stays lazy."""
        bar = self._progress(len(items) if hasattr(items, "__len__") else None)
        try:
            if not stream:
                yield from self._run_window(list(items), batch_size, pre, fwd, post, bar)
                return
            window = 1 if batch_size == 1 else batch_size * _STREAM_WINDOW_BATCHES
            source = iter(items) if hasattr(items, "__iter__") else (items[i] for i in range(len(items)))
            while True:
                chunk = list(itertools.islice(source, window))
                if not chunk:
                    return
                yield from self._run_window(chunk, batch_size, pre, fwd, post, bar)
        finally:
            if bar is not None:
                bar.close()

    def _progress(self, total):
        if not self.progress_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=self.task or type(self).__name__, unit="input")

    def _run_window(self, items: list, batch_size: int, pre, fwd, post, bar):
        pre = dict(pre)
        sort = pre.pop("_sort_by_length", self.sort_by_length)
        features = self._preprocess_many(items, **pre)
        order = [(i, j) for i, group in enumerate(features) for j in range(len(group))]
        if batch_size > 1 and sort:
            order.sort(key=lambda ij: -feature_length(features[ij[0]][ij[1]]))
        outputs = [[None] * len(group) for group in features]
        pending = [len(group) for group in features]
        for start in range(0, len(order), batch_size):
            group = order[start:start + batch_size]
            rows = self._run_batch([features[i][j] for i, j in group], fwd)
            for (i, j), row in zip(group, rows):
                outputs[i][j] = row
                pending[i] -= 1
                if bar is not None and pending[i] == 0:
                    bar.update(1)
        for rows in outputs:
            yield self.postprocess(rows if self.chunked else rows[0], **post)

    def _run_batch(self, features: list[dict], forward_params: dict) -> list[dict]:
        """Pad the features' model inputs to the longest of them, run the model once, split the outputs."""
        side = self._padding_side()
        batch, lengths, width = self._collate([f["model_inputs"] for f in features], side)
        extra = features[0].get("forward_kwargs") or {}  # per-input model arguments, the same for a whole call
        with self.device_placement(), torch.no_grad():
            batch = _to_device(batch, self.device)
            outputs = self._forward(batch, **forward_params, **extra)
            outputs = _to_device(outputs, torch.device("cpu"))
        rows = []
        for index, (feature, length) in enumerate(zip(features, lengths)):
            row = {key: value for key, value in feature.items()}
            for key, value in outputs.items():
                row[key] = self._row(key, value, index, length, width, side)
            rows.append(row)
        return rows

    def _row(self, key, value, index, length, width, side):
        if value is None:
            return None
        item = value[index]
        if key in self.sequence_outputs and isinstance(item, torch.Tensor) and width != length:
            item = item[width - length:] if side == "left" else item[:length]
        return item

    def _padding_side(self) -> str:
        return getattr(self.tokenizer, "padding_side", None) or "right"

    def _pad_values(self) -> dict:
        pad_id = getattr(self.tokenizer, "pad_token_id", None)
        return {"input_ids": 0 if pad_id is None else pad_id, "decoder_input_ids": 0 if pad_id is None else pad_id,
                "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0}

    def _collate(self, rows: list[dict], side: str):
        """Stack the rows into long tensors, padded on `side` to the longest row -> (batch, lengths, width)."""
        keys = list(rows[0])
        lengths = [len(row[keys[0]]) for row in rows]
        width = max(lengths)
        pads = self._pad_values()
        batch = {}
        for key in keys:
            pad = pads.get(key, 0)
            data = torch.full((len(rows), width), pad, dtype=torch.long)
            for index, (row, length) in enumerate(zip(rows, lengths)):
                if length:
                    values = torch.as_tensor(row[key], dtype=torch.long)
                    if side == "left":
                        data[index, width - length:] = values
                    else:
                        data[index, :length] = values
            batch[key] = data
        return batch, lengths, width


def feature_length(feature: dict) -> int:
    inputs = feature["model_inputs"]
    return len(next(iter(inputs.values()))) if inputs else 0


def _to_device(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


class ChunkPipeline(Pipeline):
    """A pipeline whose inputs may give several features each; postprocess sees all of an input's outputs."""

    chunked = True


def encoding_rows(encoding, keys=None) -> list[dict]:
    """Split a batched tokenizer output (lists, no tensors) into one dict of lists per row."""
    keys = [key for key in (keys or encoding.keys()) if key in encoding]
    count = len(encoding[keys[0]]) if keys else 0
    return [{key: encoding[key][row] for key in keys} for row in range(count)]


def model_input_names(tokenizer) -> list[str]:
    return list(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])


def jsonable(value):
    """Pipeline outputs -> JSON types (numpy scalars, arrays and tensors become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value
