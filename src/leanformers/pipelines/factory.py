"""`pipeline()`: a task name and a model (repo id, folder or loaded object) -> a ready pipeline object."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import ResourceNotFoundError, refuse_remote_code
from .errors import PipelineInputError, TaskModelMismatchError
from .tasks import TASKS, check_task, default_model, task_from_architectures

_HUB_KEYS = ("cache_dir", "force_download", "proxies", "subfolder")


def pipeline(task: str | None = None, model=None, config=None, tokenizer=None, feature_extractor=None,
             image_processor=None, processor=None, revision: str | None = None, use_fast: bool = True,
             token=None, device=None, device_map=None, dtype=None, torch_dtype=None,
             trust_remote_code: bool | None = None, model_kwargs: dict | None = None, pipeline_class=None, **kwargs):
    """Build the pipeline of `task` (e.g. "sentiment-analysis", "ner", "question-answering") around `model`.

    `model` and `tokenizer` may be hub repo ids, local folders or loaded objects; without `model`, the task's
    default checkpoint (the one transformers uses) is loaded. `gguf_file` names a GGUF file of the model folder or
    repo (config, weights and tokenizer are read from it). Remaining keywords (batch_size, top_k, ...) go to the
    pipeline class. `torch_dtype` is accepted as another name of `dtype`.
    """
    if trust_remote_code:
        refuse_remote_code()
    model_kwargs = dict(model_kwargs or {})
    dtype = _pick_dtype(dtype, torch_dtype, model_kwargs)
    hub = {"revision": revision, "token": token, "local_files_only": kwargs.pop("local_files_only", False),
           "gguf_file": kwargs.pop("gguf_file", model_kwargs.pop("gguf_file", None)),
           **{key: model_kwargs[key] for key in _HUB_KEYS if key in model_kwargs}}
    if task is None and model is None:
        raise PipelineInputError("pipeline() needs a task (e.g. pipeline('text-classification')) or a model.")
    if model is None and tokenizer is not None:
        raise PipelineInputError("A tokenizer was given without a model: the tokenizer may not fit the task's default "
                                 "model. Pass model=... as well.")
    model = str(model) if isinstance(model, Path) else model
    checked = check_task(task) if task is not None else None  # an unknown task fails before any download
    config = _load_config(config, model, hub)
    if task is None:
        task = _infer_task(model, config)
    name, entry, options = checked or check_task(task)
    if pipeline_class is None:
        module = importlib.import_module(f".{entry.module}", __package__)
        pipeline_class = getattr(module, entry.pipeline_class)
    if model is None:
        model, config, hub = _default_checkpoint(task, name, entry, options, hub, revision)
    if device_map is not None:
        if "device_map" in model_kwargs:
            raise PipelineInputError("device_map was given twice (as an argument and in model_kwargs); keep one.")
        model_kwargs["device_map"] = device_map
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    from ..export import is_onnx_folder, load_ort_model

    if is_onnx_folder(model):  # a folder written by `leanformers export onnx`: ONNX Runtime runs it
        model = load_ort_model(model, entry.heads, task)
    elif isinstance(model, str):
        model = load_model(model, entry.heads, config, task, hub, model_kwargs)
        if device is None and device_map is not None:
            device = model.device
    else:
        check_model_head(model, entry.heads, task)
    tokenizer = _load_tokenizer(tokenizer, model, config, hub, model_kwargs, use_fast)
    return pipeline_class(model=model, tokenizer=tokenizer, task=task, device=device, **kwargs)


def _pick_dtype(dtype, torch_dtype, model_kwargs):
    chosen = dtype if dtype is not None else torch_dtype
    if chosen is not None and ("dtype" in model_kwargs or "torch_dtype" in model_kwargs):
        raise PipelineInputError("dtype was given twice (as an argument and in model_kwargs); keep one.")
    if "torch_dtype" in model_kwargs:
        model_kwargs["dtype"] = model_kwargs.pop("torch_dtype")
    return chosen


def _load_config(config, model, hub):
    from ..auto import AutoConfig

    source = config if isinstance(config, (str, Path)) else (model if config is None and isinstance(model, str)
                                                              else None)
    if source is None:
        return config
    return AutoConfig.from_pretrained(str(source), **_hub_only(hub))


def _hub_only(hub: dict) -> dict:
    return {key: value for key, value in hub.items() if value is not None}


def _infer_task(model, config) -> str:
    architectures = getattr(config, "architectures", None) or []
    if not isinstance(model, str) and model is not None:
        architectures = [type(model).__name__, *architectures]
    task = task_from_architectures(architectures)
    if task is None:
        raise PipelineInputError(f"No task was given and none can be read from the model's architectures "
                                 f"{architectures}: pass the task, e.g. pipeline('text-classification', model=...).")
    return task


def _default_checkpoint(task, name, entry, options, hub, revision):
    """(repo id, config, hub kwargs) of the task's default checkpoint, with an error that says what to do."""
    repo, default_revision = default_model(name, entry, options)
    hub = {**hub, "revision": revision or _cached_commit(repo, default_revision, hub.get("cache_dir"))}
    try:
        config = _load_config(None, repo, hub)
    except ResourceNotFoundError as err:
        raise ResourceNotFoundError(
            f"pipeline({task!r}) was called without model=, so it loads the default checkpoint '{repo}' (revision "
            f"{hub['revision']}). It is not in the cache and the hub cannot be reached. Download it while online "
            f"(`leanformers download {repo} --revision {hub['revision']}`), or pass model= a local folder or a "
            f"cached repo id, e.g. pipeline({task!r}, model='path/to/checkpoint').\nCause: {err}") from err
    return repo, config, hub


def _cached_commit(repo: str, short: str, cache_dir) -> str:
    """The full commit hash of a short revision when the cache has that snapshot (offline loads need the full one)."""
    from ..hub import hub_cache_dir

    folder = Path(cache_dir or hub_cache_dir()) / f"models--{repo.replace('/', '--')}" / "snapshots"
    if folder.is_dir():
        for snapshot in sorted(folder.iterdir()):
            if snapshot.name.startswith(short):
                return snapshot.name
    return short


def _head_classes(heads) -> set[str]:
    from ..auto import REGISTRY

    return {arch.heads[head] for arch in REGISTRY.values() for head in heads if head in arch.heads}


def _describe_heads(heads) -> str:
    return " or ".join(f"*For{head}" if head else "a bare model" for head in heads)


def load_model(model: str, heads: tuple, config, task: str, hub: dict, model_kwargs: dict):
    """Load `model` with the first of `heads` its architecture has; a clear error when it has none of them."""
    from .. import auto

    arch = auto.architecture(config.model_type)
    head = next((head for head in heads if head in arch.heads), None)
    if head is None:
        available = ", ".join(arch.heads[h] for h in arch.heads)
        raise TaskModelMismatchError(
            f"The task {task!r} needs a model with a {_describe_heads(heads)} head, and '{config.model_type}' has "
            f"none ({model} offers: {available}). Pick a task these heads serve, or a checkpoint made for {task!r}.")
    auto_name = next(name for name, value in auto.AUTO_HEADS.items() if value == head) if head else "AutoModel"
    loader = getattr(auto, auto_name)
    return loader.from_pretrained(model, config=config, **_hub_only(hub), **model_kwargs)


def check_model_head(model, heads: tuple, task: str):
    """Refuse a loaded model whose class cannot serve the task (e.g. BertModel for text-classification)."""
    if "" in heads:
        return
    allowed = _head_classes(heads)
    names = {cls.__name__ for cls in type(model).__mro__}
    if not names & allowed:
        raise TaskModelMismatchError(
            f"{type(model).__name__} cannot serve the task {task!r}: it needs a model with a {_describe_heads(heads)}"
            f" head (e.g. {', '.join(sorted(allowed)[:4])}). Load the checkpoint with the matching "
            f"AutoModelFor... class, or pass its folder or repo id as model=.")


def _load_tokenizer(tokenizer, model, config, hub, model_kwargs, use_fast):
    from ..auto import AutoTokenizer

    if tokenizer is not None and not isinstance(tokenizer, (str, Path, tuple)):
        return tokenizer
    options = {key: value for key, value in model_kwargs.items() if key in _HUB_KEYS}
    if isinstance(tokenizer, tuple):
        tokenizer, extra = tokenizer[0], dict(tokenizer[1])
        extra.pop("use_fast", None)
        options.update(extra)
    source = tokenizer
    if source is None:
        source = _tokenizer_source(model, config)
    try:
        return AutoTokenizer.from_pretrained(str(source), **_hub_only(hub), **options)
    except OSError as err:
        raise ResourceNotFoundError(f"Cannot load a tokenizer from {source!r}: {err}. Pass tokenizer= a folder, "
                                    f"a repo id or a loaded tokenizer.") from err


def _tokenizer_source(model, config):
    if isinstance(model, str):
        return model
    for candidate in (getattr(getattr(model, "config", None), "name_or_path", ""),
                      getattr(config, "name_or_path", "") if config is not None else ""):
        if candidate and (os.path.isdir(candidate) or "/" in candidate):
            return candidate
    raise PipelineInputError("Cannot tell which tokenizer goes with this model object: pass tokenizer= (a folder, a "
                             "repo id or a loaded tokenizer).")


SUPPORTED_TASKS = TASKS
