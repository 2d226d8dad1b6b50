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
}
_ALIASES = {"PreTrainedConfig": "PretrainedConfig"}


def _model_exports():
    from .auto import exported_class_modules  # cheap: a table of strings, no torch

    return exported_class_modules()


def __getattr__(name):
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        module = _model_exports().get(name)
    if module is None:
        raise AttributeError(f"module 'leanformers' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), _ALIASES.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_model_exports()))
