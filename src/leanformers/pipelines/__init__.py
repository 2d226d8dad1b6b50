"""Pipelines: `pipeline(task, model=...)` and one class per task.

Names resolve on first use, so `import leanformers.pipelines` imports neither torch nor a model.
"""

from __future__ import annotations

import importlib

# public name -> module (relative to this package)
_EXPORTS = {
    "pipeline": "factory", "load_model": "factory", "check_model_head": "factory",
    "SUPPORTED_TASKS": "tasks", "TASK_ALIASES": "tasks", "get_supported_tasks": "tasks", "check_task": "tasks",
    "Pipeline": "base", "ChunkPipeline": "base", "Chat": "base",
    "PipelineException": "errors", "PipelineInputError": "errors", "UnknownTaskError": "errors",
    "TaskModelMismatchError": "errors",
    "KeyDataset": "pt_utils", "KeyPairDataset": "pt_utils",
    "FeatureExtractionPipeline": "feature_extraction",
    "FillMaskPipeline": "fill_mask",
    "TextClassificationPipeline": "text_classification",
    "TokenClassificationPipeline": "token_classification", "NerPipeline": "token_classification",
    "AggregationStrategy": "token_classification",
    "QuestionAnsweringPipeline": "question_answering", "SquadExample": "question_answering",
    "Text2TextGenerationPipeline": "text2text_generation", "SummarizationPipeline": "text2text_generation",
    "TranslationPipeline": "text2text_generation",
    "TextGenerationPipeline": "text_generation",
    "ZeroShotClassificationPipeline": "zero_shot_classification",
}
_RENAMED = {"SUPPORTED_TASKS": "TASKS"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leanformers.pipelines' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
