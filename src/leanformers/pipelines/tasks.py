"""The table of pipeline tasks: names, aliases, the pipeline class, the model head each needs, default checkpoints.

Plain strings only, so that reading it imports neither torch nor a pipeline module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UnknownTaskError


@dataclass(frozen=True)
class Task:
    module: str                        # file under leanformers/pipelines/
    pipeline_class: str
    heads: tuple                       # auto.py head names the model may have ("" = bare model), tried in order
    default: tuple | None = None       # (repo id, revision) used when no model is given
    defaults_by_option: dict = field(default_factory=dict)  # translation: (src, tgt) -> (repo id, revision)
    legacy: bool = False               # behaviour follows transformers 4.55 (the task left transformers 5)


TASKS: dict[str, Task] = {
    "feature-extraction": Task("feature_extraction", "FeatureExtractionPipeline", ("",),
                               ("distilbert/distilbert-base-cased", "6ea8117")),
    "text-classification": Task("text_classification", "TextClassificationPipeline", ("SequenceClassification",),
                                ("distilbert/distilbert-base-uncased-finetuned-sst-2-english", "714eb0f")),
    "token-classification": Task("token_classification", "TokenClassificationPipeline", ("TokenClassification",),
                                 ("dbmdz/bert-large-cased-finetuned-conll03-english", "4c53496")),
    "question-answering": Task("question_answering", "QuestionAnsweringPipeline", ("QuestionAnswering",),
                               ("distilbert/distilbert-base-cased-distilled-squad", "564e9b5"), legacy=True),
    "fill-mask": Task("fill_mask", "FillMaskPipeline", ("MaskedLM",), ("distilbert/distilroberta-base", "fb53ab8")),
    "summarization": Task("text2text_generation", "SummarizationPipeline", ("Seq2SeqLM",),
                          ("sshleifer/distilbart-cnn-12-6", "a4f8f3e"), legacy=True),
    "translation": Task("text2text_generation", "TranslationPipeline", ("Seq2SeqLM",), None, {
        ("en", "fr"): ("google-t5/t5-base", "a9723ea"), ("en", "de"): ("google-t5/t5-base", "a9723ea"),
        ("en", "ro"): ("google-t5/t5-base", "a9723ea")}, legacy=True),
    "text2text-generation": Task("text2text_generation", "Text2TextGenerationPipeline", ("Seq2SeqLM",),
                                 ("google-t5/t5-base", "a9723ea"), legacy=True),
    "text-generation": Task("text_generation", "TextGenerationPipeline", ("CausalLM",),
                            ("HuggingFaceTB/SmolLM3-3B", "a07cc9a")),
    "zero-shot-classification": Task("zero_shot_classification", "ZeroShotClassificationPipeline",
                                     ("SequenceClassification",), ("facebook/bart-large-mnli", "d7645e1")),
}
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
_TRANSLATION = re.compile(r"^translation_([^_]+)_to_([^_]+)$")

# architecture class-name endings -> task, to pick a task from config.architectures when none is given
_HEAD_TASKS = (("ForQuestionAnswering", "question-answering"), ("ForTokenClassification", "token-classification"),
               ("ForSequenceClassification", "text-classification"), ("ForMaskedLM", "fill-mask"),
               ("ForConditionalGeneration", "text2text-generation"), ("MTModel", "translation"),
               ("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"), ("Model", "feature-extraction"))


def get_supported_tasks() -> list[str]:
    """Every task name and alias `pipeline()` accepts (translation also as translation_XX_to_YY)."""
    return sorted([*TASKS, *TASK_ALIASES])


def check_task(task: str) -> tuple[str, Task, tuple | None]:
    """(normalised task name, its Task entry, options): options are (src, tgt) for translation_XX_to_YY."""
    if not isinstance(task, str):
        raise UnknownTaskError(f"The task must be a string such as 'text-classification', not "
                               f"{type(task).__name__}. Known tasks: {', '.join(get_supported_tasks())}.")
    name = TASK_ALIASES.get(task, task)
    if name in TASKS:
        return name, TASKS[name], None
    match = _TRANSLATION.match(task)
    if match:
        return "translation", TASKS["translation"], (match.group(1), match.group(2))
    raise UnknownTaskError(f"Unknown task {task!r}. Known tasks: {', '.join(get_supported_tasks())} "
                           f"(and translation_XX_to_YY, e.g. translation_en_to_fr).")


def task_from_architectures(architectures) -> str | None:
    """The task a checkpoint's `architectures` entry suggests (e.g. BertForTokenClassification -> ner)."""
    for name in architectures or ():
        for ending, task in _HEAD_TASKS:
            if name.endswith(ending):
                return task
    return None


def default_model(task_name: str, entry: Task, options) -> tuple[str, str]:
    """(repo id, revision) of the task's default checkpoint, as transformers picks it."""
    if options is not None:
        if options not in entry.defaults_by_option:
            known = ", ".join(f"translation_{s}_to_{t}" for s, t in entry.defaults_by_option)
            raise UnknownTaskError(f"There is no default model for translation_{options[0]}_to_{options[1]}; pass "
                                   f"model=... (a translation checkpoint). Defaults exist for: {known}.")
        return entry.defaults_by_option[options]
    if entry.default is None:
        raise UnknownTaskError(f"The task {task_name!r} has no default model: name the languages "
                               f"(e.g. 'translation_en_to_fr') or pass model=...")
    return entry.default
