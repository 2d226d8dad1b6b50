"""TensorFlow checkpoints without TensorFlow: `tf_model.h5` (the Keras-2 HDF5 weights layout) read with h5py, its
weight names and layouts mapped onto a model's own keys.

The mapping is one generic rule, the one TensorFlow checkpoints were written against: drop the model's own name (the
first level), `a___b` levels become `b`, `_._` separates list items, `/` becomes `.`, `kernel` becomes a transposed
`weight`, `gamma`/`beta` become `weight`/`bias`, `embeddings` becomes `weight`; a name is then matched against the
model's keys with or without its `base_model_prefix` (in a model made of models, such as EncoderDecoderModel, also
without a part's own prefix: TF's `encoder/bert/...` is our `encoder....`). Every architecture with TensorFlow
checkpoints follows it; none needs a table of its own.
"""

from __future__ import annotations

import os
import re

import torch

from .errors import CheckpointError, ResourceNotFoundError
from .hub import resolve_file

TF_WEIGHTS = "tf_model.h5"
TF_INDEX = "tf_model.h5.index.json"
TF1_INDEX = "model.ckpt.index"


def load_tf_state_dict(model, path, hub_kwargs: dict, ignore_mismatched: bool = False) -> dict[str, torch.Tensor]:
    """The weights of the TensorFlow checkpoint at `path` (a folder, a repo id or an .h5 file), keyed like `model`'s
    state dict; weights the model has no place for keep their converted names (the loader reports them)."""
    file = find_tf_weight_file(path, hub_kwargs)
    return map_tf_weights(model, read_tf_weights(file), file, ignore_mismatched)


def find_tf_weight_file(path, hub_kwargs: dict) -> str:
    name = str(path)
    if name.endswith(".index") or os.path.isfile(os.path.join(name, TF1_INDEX)) and not \
            os.path.isfile(os.path.join(name, TF_WEIGHTS)):
        raise CheckpointError(f"{name} is a TensorFlow 1 checkpoint ({TF1_INDEX}), which only TensorFlow reads; "
                              f"from_tf=True reads {TF_WEIGHTS} (TensorFlow 2 / Keras). Convert it with TensorFlow "
                              f"first.")
    if os.path.isfile(name):
        return name
    found = resolve_file(name, TF_WEIGHTS, missing_ok=True, **hub_kwargs)
    if found is not None:
        return found
    if resolve_file(name, TF_INDEX, missing_ok=True, **hub_kwargs) is not None:
        raise CheckpointError(f"{name} holds a sharded TensorFlow checkpoint ({TF_INDEX}); from_tf=True reads a "
                              f"single {TF_WEIGHTS}. Save the model unsharded (a larger max_shard_size) and load that.")
    raise ResourceNotFoundError(f"{name} has no {TF_WEIGHTS}, so from_tf=True has nothing to read. Drop from_tf=True "
                                f"to load its PyTorch weights, or pass a folder saved by a TensorFlow model.")


# ---------------------------------------------------------------------- reading
def read_tf_weights(file: str) -> dict:
    """{TF weight name: array} of every weight in a Keras-2 h5 weights file, in the file's order."""
    try:
        import h5py
    except ImportError:
        raise ImportError("Reading TensorFlow checkpoints (from_tf=True) needs h5py: pip install 'leanformers[tf]' "
                          "(TensorFlow itself is not needed).") from None
    weights = {}
    try:
        with h5py.File(file, "r") as f:
            for layer in _attribute_list(f, "layer_names", file):
                group = f[layer]
                for weight in _attribute_list(group, "weight_names", file):
                    weights[weight] = _read_dataset(group, weight, file)
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"Cannot read TensorFlow weights file {file}: {err}. It is not a complete HDF5 file "
                              f"(damaged, truncated or another format); download it again.") from None
    if not weights:
        raise CheckpointError(f"{file} holds no weights: it is not a TensorFlow (Keras h5) weights file.")
    return weights


def _attribute_list(node, name: str, file: str) -> list[str]:
    """A string-list attribute; Keras splits long ones into name0, name1, ... chunks."""
    if name in node.attrs:
        values = list(node.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in node.attrs:
            values.extend(node.attrs[f"{name}{chunk}"])
            chunk += 1
        if not chunk:
            raise CheckpointError(f"{file} has no '{name}' attribute at '{node.name}': it is an HDF5 file, but not "
                                  f"the Keras weights layout that TensorFlow models save (tf_model.h5).")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _read_dataset(group, weight: str, file: str):
    import numpy

    if weight not in group:
        raise CheckpointError(f"{file} lists the weight '{weight}' but does not hold it; the file is damaged. "
                              f"Download it again.")
    try:
        return numpy.asarray(group[weight])
    except (OSError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"Cannot read the weight '{weight}' of {file}: {err}. The file is damaged or "
                              f"truncated; download it again.") from None


# ---------------------------------------------------------------------- names and layouts
def tf_to_torch_name(tf_name: str, ndim: int) -> tuple[str, tuple | None]:
    """('bert.encoder.layer.0.output.dense.weight', permutation or None) for a TF weight name and its rank."""
    name = tf_name.replace(":0", "")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)  # 'tag___name' levels stand for 'name'
    parts = [part for part in name.replace("_._", "/").split("/") if part]  # '_._' is a list index
    if len(parts) > 1:
        parts = parts[1:]  # the first level is the model's own name
    last = parts[-1]
    permutation = None
    if last == "kernel":  # TF stores (in, out) kernels; torch (out, in), convolutions (out, in, *window)
        permutation = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1)}.get(ndim)
    elif last in ("pointwise_kernel", "depthwise_kernel") or "emb_projs" in parts or "out_projs" in parts:
        permutation = tuple(reversed(range(ndim))) if ndim > 1 else None
    renamed = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias",
               "pointwise_kernel": "pointwise.weight", "depthwise_kernel": "depthwise.weight"}
    parts[-1] = renamed.get(last, last)
    return ".".join(parts), permutation


def map_tf_weights(model, weights: dict, file: str, ignore_mismatched: bool = False) -> dict[str, torch.Tensor]:
    """TF weights keyed and laid out like `model`'s state dict; a weight whose size differs is an error naming the
    file and both keys (unless `ignore_mismatched`, when the loader re-initialises it)."""
    expected = model.state_dict(keep_vars=True)
    parts = {name: child.base_model_prefix for name, child in model.named_children()
             if getattr(child, "base_model_prefix", "")}  # the models a composite model is made of
    state, matched = {}, 0
    for tf_name, array in weights.items():
        name, permutation = tf_to_torch_name(tf_name, array.ndim)
        key = _match_key(name, expected, model.base_model_prefix, parts)
        tensor = torch.from_numpy(array) if array.ndim else torch.tensor(array.item())
        if permutation is not None:
            tensor = tensor.permute(permutation)
        if key in expected:
            want = tuple(expected[key].shape)
            if tensor.numel() == expected[key].numel():
                tensor = tensor.reshape(want)  # TF keeps some biases as (1, n) and similar
                matched += 1
            elif not ignore_mismatched:
                raise CheckpointError(
                    f"The TensorFlow weight '{tf_name}' of {file} has shape {tuple(array.shape)}, but its place in "
                    f"{type(model).__name__}, '{key}', has shape {want}. The config does not match the weights; fix "
                    f"config.json, or pass ignore_mismatched_sizes=True to re-initialise this weight.")
        state.setdefault(key, tensor.contiguous())
    if expected and not matched:
        first = next(iter(weights))
        raise CheckpointError(
            f"None of the weights of {file} belongs to {type(model).__name__}: its first weight '{first}' reads as "
            f"'{_match_key(tf_to_torch_name(first, 0)[0], expected, model.base_model_prefix)}', which the model does "
            f"not have (it expects e.g. '{next(iter(expected))}'). The file is the checkpoint of another architecture; "
            f"load it with the model class it was saved from.")
    return state


def _match_key(name: str, expected: dict, prefix: str, parts: dict | None = None) -> str:
    """`name`, or `name` with `prefix.` removed or added, or with the own prefix of the part it starts with removed
    (`parts`: {part: its base_model_prefix}), whichever the model has."""
    if name in expected:
        return name
    head, _, rest = name.partition(".")
    inner = (parts or {}).get(head, "") + "."
    if rest.startswith(inner) and f"{head}.{rest[len(inner):]}" in expected:
        return f"{head}.{rest[len(inner):]}"
    if not prefix:
        return name
    dotted = prefix + "."
    for candidate in (name[len(dotted):] if name.startswith(dotted) else None, dotted + name):
        if candidate in expected:
            return candidate
    return name

