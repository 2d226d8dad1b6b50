"""ONNX Runtime-backed models: the calling conventions of the PyTorch model over an exported folder (model.onnx, or
encoder_model.onnx + decoder_model.onnx), so that `pipeline(task, model=folder)` runs the same pipeline code on
ONNX Runtime."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch

from ..cache import DynamicCache, EncoderDecoderCache
from ..errors import ConfigError, ResourceNotFoundError
from ..generation.utils import GenerationMixin
from ..outputs import (BaseModelOutput, CausalLMOutputWithPast, MaskedLMOutput, QuestionAnsweringModelOutput,
                       Seq2SeqLMOutput, SequenceClassifierOutput, TokenClassifierOutput)
from .onnx import EXPORT_INFO, ONNX_FILE, ONNX_TASKS, SEQ2SEQ_FILES
from .runtime import session

_OUTPUT_CLASSES = {"feature-extraction": BaseModelOutput, "fill-mask": MaskedLMOutput,
                   "text-classification": SequenceClassifierOutput, "token-classification": TokenClassifierOutput,
                   "question-answering": QuestionAnsweringModelOutput}
_IGNORED = ("return_dict", "output_attentions", "output_hidden_states", "use_cache")


def is_onnx_folder(path) -> bool:
    """True for a folder written by `export_onnx` (its export info beside the .onnx files)."""
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(path, EXPORT_INFO))


class ORTModel:
    """model.onnx in an ONNX Runtime session, called like the PyTorch model: tensors in, a ModelOutput out."""

    base_model_prefix = ""
    main_input_name = "input_ids"

    def __init__(self, folder, session_options=None, providers=None):
        from ..auto import AutoConfig

        folder = str(folder)
        if not is_onnx_folder(folder):
            raise ResourceNotFoundError(f"{folder} holds no ONNX export ({EXPORT_INFO} and its .onnx files); write "
                                        f"one with `leanformers export onnx MODEL {folder} --task TASK`.")
        with open(os.path.join(folder, EXPORT_INFO), encoding="utf-8") as f:
            self.export_info = json.load(f)
        self.task = self.export_info["task"]
        self.config = AutoConfig.from_pretrained(folder)
        self.name_or_path = folder
        files = self.export_info["files"]
        self.sessions = {name: session(os.path.join(folder, name), session_options, providers) for name in files}
        main = ONNX_FILE if ONNX_FILE in files else SEQ2SEQ_FILES["decoder"]
        self.session = self.sessions[main]
        self.input_names = tuple(files[main]["inputs"])
        self.output_names = tuple(files[main]["outputs"])
        self._device = torch.device("cpu")

    @classmethod
    def from_pretrained(cls, folder, session_options=None, providers=None, **_ignored):
        return cls(folder, session_options, providers)

    # ------------------------------------------------------------------ what pipelines read from a model
    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def to(self, device=None, *args, **kwargs):
        """Outputs come back on `device`; ONNX Runtime itself runs on the session's providers (CPU by default)."""
        if device is not None and not isinstance(device, torch.dtype):
            self._device = torch.device(device)
        return self

    def eval(self):
        return self

    @classmethod
    def can_generate(cls) -> bool:
        return False

    def save_pretrained(self, save_directory, **_ignored):
        """Copy the export (graph, config, export info) into `save_directory`."""
        os.makedirs(save_directory, exist_ok=True)
        for name in (*self.export_info["files"], EXPORT_INFO):
            shutil.copyfile(os.path.join(self.name_or_path, name), os.path.join(save_directory, name))
        self.config.save_pretrained(save_directory)

    # ------------------------------------------------------------------ running
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        feed = self._feed({"input_ids": input_ids, "attention_mask": attention_mask, **kwargs})
        results = self.session.run(list(self.output_names), feed)
        fields = {name: torch.from_numpy(np.ascontiguousarray(value)).to(self._device)
                  for name, value in zip(self.output_names, results)}
        return _OUTPUT_CLASSES[self.task](**fields)

    def _feed(self, given: dict) -> dict:
        """The graph's inputs as int64 arrays; an absent token_type_ids is zeros, an all-zero extra one dropped."""
        for name in _IGNORED:
            given.pop(name, None)
        given = {name: value for name, value in given.items() if value is not None}
        if "input_ids" not in given:
            raise ConfigError("ORTModel needs input_ids (inputs_embeds cannot enter an exported graph).")
        ids = given["input_ids"]
        if "attention_mask" in self.input_names and "attention_mask" not in given:
            given["attention_mask"] = torch.ones_like(ids)
        if "token_type_ids" in self.input_names and "token_type_ids" not in given:
            given["token_type_ids"] = torch.zeros_like(ids)
        extra = [name for name in given if name not in self.input_names and
                 not (name == "token_type_ids" and not bool(given[name].any()))]
        if extra:
            raise ConfigError(f"The ONNX graph of {self.name_or_path} takes {list(self.input_names)}, not {extra}; "
                              f"export again from a model whose forward uses them.")
        return {name: _as_array(given[name]) for name in self.input_names}


class _ORTGenerator(GenerationMixin, ORTModel):
    """An exported decoder whose cache goes in and out of the graph (`past_key_values.*` inputs): generate() runs on
    it as on the PyTorch model."""

    def __init__(self, folder, session_options=None, providers=None):
        super().__init__(folder, session_options, providers)
        self.past_names = tuple(n for n in self.input_names if n.startswith("past_key_values."))
        self._past_shapes = [i.shape for i in self.session.get_inputs() if i.name in self.past_names]
        _attach_generation_config(self, folder)

    @classmethod
    def can_generate(cls) -> bool:
        return True

    def named_modules(self):  # generation looks for a learned position table; the graph holds none to look at
        return iter(())


class ORTModelForCausalLM(_ORTGenerator):
    """A decoder exported with its key/value cache: forward() takes and returns a DynamicCache, so generate() and
    the text-generation pipeline decode step by step on ONNX Runtime as they do on PyTorch."""

    main_input_name = "input_ids"

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None,
                **kwargs):
        for name in (*_IGNORED, "logits_to_keep"):
            kwargs.pop(name, None)
        if kwargs:
            raise ConfigError(f"The ONNX decoder takes input_ids, attention_mask, position_ids and past_key_values, "
                              f"not {sorted(kwargs)}.")
        cache = DynamicCache.from_legacy_cache(past_key_values) if isinstance(past_key_values, (tuple, list)) \
            else past_key_values
        batch, seq = input_ids.shape
        past = cache.get_seq_length() if cache is not None and cache.is_initialized else 0
        if attention_mask is None:
            attention_mask = torch.ones(batch, past + seq, dtype=torch.long)
        if position_ids is None:  # as the PyTorch decoders do: positions after the cached ones
            position_ids = torch.arange(past, past + seq)[None].expand(batch, seq)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
        feed = {name: _as_array(feed[name]) for name in self.input_names if name in feed}
        feed.update(_past_arrays(self.past_names, self._past_shapes, cache if past else None, batch))
        results = self.session.run(list(self.output_names), feed)
        tensors = [torch.from_numpy(np.ascontiguousarray(r)) for r in results]
        present = DynamicCache.from_legacy_cache(tuple(zip(tensors[1::2], tensors[2::2])))
        return CausalLMOutputWithPast(logits=tensors[0].to(self._device),
                                      past_key_values=present if use_cache is not False else None)


class _ORTEncoder:
    """The encoder file of a seq2seq export, called like the PyTorch encoder: ids and mask -> BaseModelOutput."""

    def __init__(self, runtime, device):
        self.runtime, self.device = runtime, device

    def __call__(self, input_ids=None, attention_mask=None, **_ignored):
        return self.forward(input_ids, attention_mask)

    def forward(self, input_ids=None, attention_mask=None, **_ignored):
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        hidden = self.runtime.run(["last_hidden_state"], {"input_ids": _as_array(input_ids),
                                                          "attention_mask": _as_array(mask)})[0]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden).to(self.device))


class ORTModelForSeq2SeqLM(_ORTGenerator):
    """An encoder-decoder exported as encoder_model.onnx and decoder_model.onnx (with the decoder's self-attention
    cache in and out): generate() and the text2text pipelines run on ONNX Runtime as on PyTorch."""

    def get_encoder(self):
        return _ORTEncoder(self.sessions[SEQ2SEQ_FILES["encoder"]], self._device)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                past_key_values=None, use_cache=None, decoder_attention_mask=None, **kwargs):
        for name in (*_IGNORED, "logits_to_keep"):
            kwargs.pop(name, None)
        if kwargs:
            raise ConfigError(f"The ONNX encoder-decoder does not take {sorted(kwargs)}.")
        if encoder_outputs is None:
            encoder_outputs = self.get_encoder()(input_ids, attention_mask)
        hidden = encoder_outputs[0]
        mask = attention_mask if attention_mask is not None else torch.ones(hidden.shape[:2], dtype=torch.long)
        own = getattr(past_key_values, "self_attention_cache", past_key_values)
        filled = own is not None and own.is_initialized and own.get_seq_length() > 0
        feed = {"decoder_input_ids": _as_array(decoder_input_ids), "encoder_hidden_states": hidden.cpu().numpy(),
                "encoder_attention_mask": _as_array(mask)}
        feed.update(_past_arrays(self.past_names, self._past_shapes, own if filled else None, hidden.shape[0]))
        tensors = [torch.from_numpy(np.ascontiguousarray(r)) for r in self.session.run(list(self.output_names), feed)]
        present = EncoderDecoderCache(DynamicCache.from_legacy_cache(tuple(zip(tensors[1::2], tensors[2::2]))),
                                      DynamicCache())
        return Seq2SeqLMOutput(logits=tensors[0].to(self._device),
                               past_key_values=present if use_cache is not False else None,
                               encoder_last_hidden_state=hidden)


def _attach_generation_config(model, folder: str):
    if os.path.isfile(os.path.join(folder, "generation_config.json")):
        from ..generation.config import GenerationConfig

        model.generation_config = GenerationConfig.from_pretrained(folder)


def _past_arrays(names, shapes, cache, batch: int) -> dict:
    """The cache as the graph's past inputs; no cache (the first step) is an empty past for every layer."""
    if cache is None:
        return {name: np.zeros((batch, shape[1], 0, shape[3]), dtype=np.float32) for name, shape in zip(names, shapes)}
    tensors = [t for pair in cache.to_legacy_cache() for t in pair]
    return {name: t.detach().cpu().float().numpy() for name, t in zip(names, tensors)}


def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.int64)


def load_ort_model(folder, heads: tuple, task: str) -> ORTModel:
    """The ORTModel of an exported folder, refused when its task does not serve `task` (pipeline heads)."""
    with open(os.path.join(folder, EXPORT_INFO), encoding="utf-8") as f:
        exported = json.load(f)["task"]
    classes = {"text-generation": ORTModelForCausalLM, "text2text-generation": ORTModelForSeq2SeqLM}
    model = classes.get(exported, ORTModel)(folder)
    head = ONNX_TASKS[model.task].head
    if head not in heads:
        raise ConfigError(f"{folder} was exported for {model.task!r}, which cannot serve the task {task!r}; export "
                          f"again with `leanformers export onnx MODEL DIR --task {task}`.")
    return model
