"""text2text-generation, summarization and translation: encoder-decoder generation, as transformers 4.55 does it.

Generation settings are layered like transformers 4.55: the pipeline's defaults (max_new_tokens=256, num_beams=4),
then the model's generation config for what the defaults leave unset, then keywords given at construction, then
the config's `task_specific_params[task]` (which may also set the input `prefix`), and at call time the call's
keywords.
"""

from __future__ import annotations

import copy
import enum
import logging

import torch

from ..generation.config import FIELDS, GenerationConfig
from .base import Pipeline, require_text
from .errors import PipelineInputError

logger = logging.getLogger("leanformers")


class ReturnType(enum.Enum):
    TENSORS = 0
    TEXT = 1


def trim_finished(rows: torch.Tensor, eos_ids, start: int) -> torch.Tensor:
    """Cut the padding a batch added after every row of one input ended (each row ends at its first EOS after
    `start`); the result is what a batch of that input alone would give."""
    if not eos_ids or rows.shape[-1] <= start:
        return rows
    ends = []
    for row in rows.tolist():
        hits = [i for i, token in enumerate(row[start:], start) if token in eos_ids]
        ends.append(hits[0] + 1 if hits else len(row))
    return rows[:, :max(ends)]


class _LengthPrecedence(logging.Filter):
    """Drops generate()'s note that max_new_tokens overrides max_length: pipelines layer both on purpose."""

    def filter(self, record):
        return not record.getMessage().startswith(("Both max_new_tokens", "Both min_new_tokens"))


_QUIET = _LengthPrecedence()


def generate_quietly(model, **kwargs):
    """model.generate(**kwargs) without the length-precedence notes (one per call would flood batch runs)."""
    logger.addFilter(_QUIET)
    try:
        return model.generate(**kwargs)
    finally:
        logger.removeFilter(_QUIET)


def eos_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


class Text2TextGenerationPipeline(Pipeline):
    """Text -> [{"generated_text": ...}] (one entry per returned sequence)."""

    task_name = "text2text-generation"
    return_name = "generated"
    default_generation = {"max_new_tokens": 256, "num_beams": 4}

    def _setup(self, kwargs):
        self.prefix = getattr(self.model.config, "prefix", None)
        settings = {key: kwargs.pop(key) for key in list(kwargs) if key in FIELDS}
        self.generation_config = self._generation_settings(settings)
        return kwargs

    def _generation_settings(self, settings: dict) -> GenerationConfig:
        config = GenerationConfig(**self.default_generation)
        own = self.model.generation_config.to_dict()
        config.update(**{k: v for k, v in own.items() if k in FIELDS and v is not None}, defaults_only=True)
        config.update(**settings)
        if config.temperature == 0.0:
            config.do_sample = False
        default_new = self.default_generation.get("max_new_tokens")
        if default_new is not None and config.max_new_tokens == default_new and config.max_length not in (None, 20):
            config.max_new_tokens = None  # a max_length the model (or caller) chose wins over the default
        task_params = dict((getattr(self.model.config, "task_specific_params", None) or {}).get(self.task) or {})
        if "prefix" in task_params:
            self.prefix = task_params.pop("prefix")
        config.update(**task_params)
        if config.pad_token_id is None and getattr(self.tokenizer, "pad_token_id", None) is not None:
            config.pad_token_id = self.tokenizer.pad_token_id
        return config

    def _sanitize_parameters(self, return_tensors=None, return_text=None, return_type=None,
                             clean_up_tokenization_spaces=None, truncation=None, stop_sequence=None,
                             **generate_kwargs):
        preprocess = {} if truncation is None else {"truncation": truncation}
        postprocess = {}
        if return_tensors is not None and return_type is None:
            return_type = ReturnType.TENSORS if return_tensors else ReturnType.TEXT
        if return_type is not None:
            postprocess["return_type"] = return_type
        if clean_up_tokenization_spaces is not None:
            postprocess["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        if stop_sequence is not None:
            stop_ids = self.tokenizer.encode(stop_sequence, add_special_tokens=False)
            if len(stop_ids) > 1:
                logger.warning("stop_sequence is several tokens long; generation stops at its first token.")
            generate_kwargs["eos_token_id"] = stop_ids[0]
        return preprocess, generate_kwargs, postprocess

    def __call__(self, *args, **kwargs):
        if not args:
            raise PipelineInputError(f"{type(self).__name__} needs an input text (or a list of texts).")
        result = super().__call__(*args, **kwargs)
        if isinstance(args[0], list) and all(isinstance(item, str) for item in args[0]) and \
                all(len(entry) == 1 for entry in result):
            return [entry[0] for entry in result]
        return result

    def _encode(self, text, truncation) -> dict:
        require_text(text)
        encoding = self.tokenizer((self.prefix or "") + text, padding=False, truncation=truncation)
        return {key: value for key, value in encoding.items() if key != "token_type_ids"}

    def preprocess(self, inputs, truncation=False, **kwargs):
        if isinstance(inputs, list):
            raise PipelineInputError("Each input must be one string; pass a list of strings to run several.")
        return {"model_inputs": self._encode(inputs, truncation)}

    def _forward(self, model_inputs, **generate_kwargs):
        if "generation_config" not in generate_kwargs:
            generate_kwargs["generation_config"] = self.generation_config
        batch = model_inputs["input_ids"].shape[0]
        output_ids = generate_quietly(self.model, **model_inputs, **generate_kwargs)
        return {"output_ids": output_ids.reshape(batch, output_ids.shape[0] // batch, *output_ids.shape[1:])}

    def postprocess(self, model_outputs, return_type=ReturnType.TEXT, clean_up_tokenization_spaces=False):
        rows = model_outputs["output_ids"]
        records = []
        if return_type == ReturnType.TENSORS:
            config = self.generation_config
            rows = trim_finished(rows, eos_list(config.eos_token_id or self.model.generation_config.eos_token_id), 1)
        for output_ids in rows:
            if return_type == ReturnType.TENSORS:
                records.append({f"{self.return_name}_token_ids": output_ids})
            else:
                text = self.tokenizer.decode(output_ids.tolist(), skip_special_tokens=True,
                                             clean_up_tokenization_spaces=clean_up_tokenization_spaces)
                records.append({f"{self.return_name}_text": text})
        return records


class SummarizationPipeline(Text2TextGenerationPipeline):
    """Text -> [{"summary_text": ...}]."""

    task_name = "summarization"
    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    """Text -> [{"translation_text": ...}]; languages from the task name (translation_en_to_fr) or src_lang/tgt_lang
    for multilingual tokenizers."""

    task_name = "translation"
    return_name = "translation"

    def _sanitize_parameters(self, src_lang=None, tgt_lang=None, **kwargs):
        preprocess, forward, postprocess = super()._sanitize_parameters(**kwargs)
        if src_lang is not None:
            preprocess["src_lang"] = src_lang
        if tgt_lang is not None:
            preprocess["tgt_lang"] = tgt_lang
        if src_lang is None and tgt_lang is None:
            parts = (kwargs.get("task") or self.task or "").split("_")
            if len(parts) == 4:
                preprocess["src_lang"], preprocess["tgt_lang"] = parts[1], parts[3]
        forward.pop("task", None)
        return preprocess, forward, postprocess

    def preprocess(self, inputs, truncation=False, src_lang=None, tgt_lang=None):
        build = getattr(self.tokenizer, "_build_translation_inputs", None)
        if build is None:
            return super().preprocess(inputs, truncation=truncation)
        encoding = build(require_text(inputs), return_tensors=None, truncation=truncation, src_lang=src_lang,
                         tgt_lang=tgt_lang)
        encoding = dict(encoding)
        extra = {key: encoding.pop(key) for key in list(encoding) if not isinstance(encoding[key], list)}
        encoding.pop("token_type_ids", None)
        return {"model_inputs": encoding, "forward_kwargs": copy.deepcopy(extra)}
