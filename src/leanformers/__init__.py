"""leanformers: a compact, fast, drop-in reimplementation of the Transformers stack on PyTorch.

Public names are resolved on first use (PEP 562), so `import leanformers` stays cheap and does not import torch.
"""

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_EXPORTS = {
    "PretrainedConfig": "configuration",
    "PreTrainedConfig": "configuration",
    "PreTrainedModel": "modeling",
    "ModelOutput": "outputs",
    "AutoConfig": "auto",
    "AutoTokenizer": "auto",
    "AutoModel": "auto",
    "AutoModelForPreTraining": "auto",
    "AutoModelForMaskedLM": "auto",
    "AutoModelForSequenceClassification": "auto",
    "AutoModelForMultipleChoice": "auto",
    "AutoModelForTokenClassification": "auto",
    "AutoModelForQuestionAnswering": "auto",
    "AutoModelForCausalLM": "auto",
    "AutoModelForNextSentencePrediction": "auto",
    "PreTrainedTokenizerFast": "tokenization",
    "PreTrainedTokenizerBase": "tokenization",
    "BatchEncoding": "tokenization",
    "XLMTokenizer": "tokenization",
    "MarianTokenizer": "tokenization",
    "CTRLTokenizer": "tokenization",
    "Cache": "cache",
    "DynamicCache": "cache",
    "StaticCache": "cache",
    "EncoderDecoderCache": "cache",
    "TrainingArguments": "training",
    "Seq2SeqTrainingArguments": "training",
    "Trainer": "training",
    "Seq2SeqTrainer": "training",
    "TrainerCallback": "training",
    "TrainerState": "training",
    "TrainerControl": "training",
    "EarlyStoppingCallback": "training",
    "ProgressCallback": "training",
    "PrinterCallback": "training",
    "DefaultFlowCallback": "training",
    "EvalPrediction": "training",
    "PredictionOutput": "training",
    "TrainOutput": "training",
    "set_seed": "training",
    "IntervalStrategy": "training",
    "SchedulerType": "training",
    "default_data_collator": "training",
    "DefaultDataCollator": "training",
    "DataCollatorWithPadding": "training",
    "DataCollatorForLanguageModeling": "training",
    "DataCollatorForTokenClassification": "training",
    "DataCollatorForSeq2Seq": "training",
    "get_scheduler": "training",
    "get_constant_schedule": "training",
    "get_constant_schedule_with_warmup": "training",
    "get_linear_schedule_with_warmup": "training",
    "get_cosine_schedule_with_warmup": "training",
    "get_cosine_with_hard_restarts_schedule_with_warmup": "training",
    "get_polynomial_decay_schedule_with_warmup": "training",
    "get_inverse_sqrt_schedule": "training",
    "get_wsd_schedule": "training",
    "AdamW": "training",
    "InputExample": "training",
    "InputFeatures": "training",
    "DataProcessor": "training",
    "glue_processors": "training",
    "glue_output_modes": "training",
    "glue_tasks_num_labels": "training",
    "glue_convert_examples_to_features": "training",
    "glue_compute_metrics": "training",
    "pipeline": "pipelines",
    "Pipeline": "pipelines",
    "FeatureExtractionPipeline": "pipelines",
    "FillMaskPipeline": "pipelines",
    "TextClassificationPipeline": "pipelines",
    "TokenClassificationPipeline": "pipelines",
    "NerPipeline": "pipelines",
    "QuestionAnsweringPipeline": "pipelines",
    "Text2TextGenerationPipeline": "pipelines",
    "SummarizationPipeline": "pipelines",
    "TranslationPipeline": "pipelines",
    "TextGenerationPipeline": "pipelines",
    "ZeroShotClassificationPipeline": "pipelines",
}
_ALIASES = {"PreTrainedConfig": "PretrainedConfig"}


def _model_exports():
    from .auto import exported_class_modules  # cheap: tables of strings, no torch
    from .generation import _EXPORTS as generation_names

    return {**exported_class_modules(), **{name: "generation" for name in generation_names}}


def _refuse_other_frameworks(name):
    """TFBertModel, FlaxBertModel, ...: say what to use instead of a bare AttributeError."""
    pytorch_name = name.removeprefix("TF") if name.startswith("TF") else name.removeprefix("Flax")
    if pytorch_name != name and pytorch_name in _model_exports():
        raise AttributeError(f"leanformers has no {name}: it provides PyTorch models only. Use {pytorch_name}; "
                             f"a TensorFlow checkpoint (tf_model.h5) is read with "
                             f"{pytorch_name}.from_pretrained(path, from_tf=True).")


def __getattr__(name):
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        module = _model_exports().get(name)
    if module is None:
        _refuse_other_frameworks(name)
        raise AttributeError(f"module 'leanformers' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_model_exports()))
