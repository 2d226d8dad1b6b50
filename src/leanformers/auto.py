"""The one registry: model_type -> config class, model class per head, tokenizer class. Auto* classes read it.

Entries are strings so that reading the table imports nothing; a class is imported when first asked for.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from .errors import ConfigError, UnknownModelTypeError, refuse_remote_code


@dataclass(frozen=True)
class Architecture:
    module: str                       # file under leanformers/models/ (".name": leanformers/name.py)
    config: str                       # config class name
    heads: dict = field(default_factory=dict)   # head name ("" = bare model) -> model class name
    tokenizer: str = "PreTrainedTokenizerFast"  # tokenizer class name in leanformers.tokenization


def _bert_like(prefix: str, extra: dict | None = None) -> dict:
    heads = {
        "": f"{prefix}Model", "MaskedLM": f"{prefix}ForMaskedLM",
        "SequenceClassification": f"{prefix}ForSequenceClassification",
        "MultipleChoice": f"{prefix}ForMultipleChoice", "TokenClassification": f"{prefix}ForTokenClassification",
        "QuestionAnswering": f"{prefix}ForQuestionAnswering",
    }
    return {**heads, **(extra or {})}


REGISTRY: dict[str, Architecture] = {
    "bert": Architecture("bert_heads", "BertConfig", _bert_like("Bert", {
        "PreTraining": "BertForPreTraining", "NextSentencePrediction": "BertForNextSentencePrediction",
        "CausalLM": "BertLMHeadModel"}), "BertTokenizerFast"),
    "distilbert": Architecture("distilbert", "DistilBertConfig", _bert_like("DistilBert", {
        "PreTraining": "DistilBertForMaskedLM"}), "DistilBertTokenizerFast"),
    **{model_type: Architecture(module, f"{prefix}Config", {
        "": f"{prefix}Model", "PreTraining": f"{prefix}WithLMHeadModel", "MaskedLM": f"{prefix}WithLMHeadModel",
        **({"CausalLM": "XLMWithLMHeadModel"} if prefix == "XLM" else {}),
        "SequenceClassification": f"{prefix}ForSequenceClassification",
        "TokenClassification": f"{prefix}ForTokenClassification", "MultipleChoice": f"{prefix}ForMultipleChoice",
        "QuestionAnswering": f"{prefix}ForQuestionAnsweringSimple", "TextEncoding": f"{prefix}Model",
        "BeamQuestionAnswering": f"{prefix}ForQuestionAnswering"}, f"{prefix}Tokenizer")
       for model_type, module, prefix in (("xlm", "xlm_heads", "XLM"), ("flaubert", "flaubert", "Flaubert"))},
    "roberta": Architecture("roberta", "RobertaConfig", _bert_like("Roberta", {
        "PreTraining": "RobertaForMaskedLM", "CausalLM": "RobertaForCausalLM"}), "RobertaTokenizerFast"),
    "deberta": Architecture("deberta_heads", "DebertaConfig", {
        k: v for k, v in _bert_like("Deberta", {"PreTraining": "DebertaForMaskedLM"}).items() if k != "MultipleChoice"},
        "DebertaTokenizerFast"),
    "deberta-v2": Architecture("deberta_v2", "DebertaV2Config", _bert_like("DebertaV2", {
        "PreTraining": "DebertaV2ForMaskedLM"}), "DebertaV2TokenizerFast"),
    "xlm-roberta": Architecture("roberta", "XLMRobertaConfig", _bert_like("XLMRoberta", {
        "PreTraining": "XLMRobertaForMaskedLM", "CausalLM": "XLMRobertaForCausalLM"}), "XLMRobertaTokenizerFast"),
    "reformer": Architecture("reformer_heads", "ReformerConfig", {
        "": "ReformerModel", "CausalLM": "ReformerModelWithLMHead", "MaskedLM": "ReformerForMaskedLM",
        "SequenceClassification": "ReformerForSequenceClassification",
        "QuestionAnswering": "ReformerForQuestionAnswering"}, "ReformerTokenizerFast"),
    "camembert": Architecture("roberta", "CamembertConfig", _bert_like("Camembert", {
        "PreTraining": "CamembertForMaskedLM", "CausalLM": "CamembertForCausalLM"}), "CamembertTokenizerFast"),
    "longformer": Architecture("longformer_heads", "LongformerConfig", _bert_like("Longformer", {
        "PreTraining": "LongformerForMaskedLM"}), "LongformerTokenizerFast"),
    "albert": Architecture("albert", "AlbertConfig", _bert_like("Albert", {
        "PreTraining": "AlbertForPreTraining"}), "AlbertTokenizerFast"),
    "mobilebert": Architecture("mobilebert_heads", "MobileBertConfig", _bert_like("MobileBert", {
        "PreTraining": "MobileBertForPreTraining", "NextSentencePrediction": "MobileBertForNextSentencePrediction"}),
        "MobileBertTokenizerFast"),
    "electra": Architecture("electra", "ElectraConfig", _bert_like("Electra", {
        "PreTraining": "ElectraForPreTraining", "CausalLM": "ElectraForCausalLM"}), "ElectraTokenizerFast"),
    "retribert": Architecture("retribert", "RetriBertConfig", {"": "RetriBertModel", "PreTraining": "RetriBertModel"},
                              "RetriBertTokenizerFast"),
    "gpt2": Architecture("gpt2", "GPT2Config", {
        "": "GPT2Model", "CausalLM": "GPT2LMHeadModel", "PreTraining": "GPT2LMHeadModel",
        "SequenceClassification": "GPT2ForSequenceClassification",
        "TokenClassification": "GPT2ForTokenClassification", "QuestionAnswering": "GPT2ForQuestionAnswering",
        "DoubleHeads": "GPT2DoubleHeadsModel"}, "GPT2TokenizerFast"),
    "openai-gpt": Architecture("openai", "OpenAIGPTConfig", {
        "": "OpenAIGPTModel", "CausalLM": "OpenAIGPTLMHeadModel", "PreTraining": "OpenAIGPTLMHeadModel",
        "SequenceClassification": "OpenAIGPTForSequenceClassification",
        "DoubleHeads": "OpenAIGPTDoubleHeadsModel"}, "OpenAIGPTTokenizerFast"),
    "xlnet": Architecture("xlnet_heads", "XLNetConfig", {
        "": "XLNetModel", "CausalLM": "XLNetLMHeadModel", "PreTraining": "XLNetLMHeadModel",
        "SequenceClassification": "XLNetForSequenceClassification",
        "TokenClassification": "XLNetForTokenClassification", "MultipleChoice": "XLNetForMultipleChoice",
        "QuestionAnswering": "XLNetForQuestionAnsweringSimple",
        "QuestionAnsweringBeams": "XLNetForQuestionAnswering"}, "XLNetTokenizerFast"),
    "ctrl": Architecture("ctrl", "CTRLConfig", {
        "": "CTRLModel", "CausalLM": "CTRLLMHeadModel", "PreTraining": "CTRLLMHeadModel",
        "SequenceClassification": "CTRLForSequenceClassification"}, "CTRLTokenizer"),
    "transfo-xl": Architecture("transfo_xl_heads", "TransfoXLConfig", {
        "": "TransfoXLModel", "CausalLM": "TransfoXLLMHeadModel", "PreTraining": "TransfoXLLMHeadModel",
        "SequenceClassification": "TransfoXLForSequenceClassification"}, "TransfoXLTokenizer"),
    **{model_type: Architecture("llama_heads", f"{prefix}Config", {
        "": f"{prefix}Model", "CausalLM": f"{prefix}ForCausalLM",
        "SequenceClassification": f"{prefix}ForSequenceClassification",
        "TokenClassification": f"{prefix}ForTokenClassification",
        "QuestionAnswering": f"{prefix}ForQuestionAnswering"}, tokenizer)
       for model_type, prefix, tokenizer in (("llama", "Llama", "LlamaTokenizerFast"),
                                             ("mistral", "Mistral", "LlamaTokenizerFast"),
                                             ("qwen2", "Qwen2", "Qwen2TokenizerFast"))},
    # encoder-decoder models
    **{model_type: Architecture(model_type, f"{prefix}Config", {
        "": f"{prefix}Model", "Seq2SeqLM": f"{prefix}ForConditionalGeneration",
        "SequenceClassification": f"{prefix}ForSequenceClassification",
        "QuestionAnswering": f"{prefix}ForQuestionAnswering", "CausalLM": f"{prefix}ForCausalLM",
        "MaskedLM": f"{prefix}ForConditionalGeneration",  # denoising LM: AutoModelForMaskedLM picks it too
        **({"PreTraining": "BartForConditionalGeneration"} if prefix == "Bart" else {})}, tokenizer)
       for model_type, prefix, tokenizer in (("bart", "Bart", "BartTokenizerFast"),
                                             ("mbart", "MBart", "MBartTokenizerFast"))},
    "marian": Architecture("marian", "MarianConfig", {
        "": "MarianModel", "Seq2SeqLM": "MarianMTModel", "CausalLM": "MarianForCausalLM"}, "MarianTokenizer"),
    "pegasus": Architecture("pegasus", "PegasusConfig", {
        "": "PegasusModel", "Seq2SeqLM": "PegasusForConditionalGeneration", "CausalLM": "PegasusForCausalLM"},
        "PegasusTokenizerFast"),
    "t5": Architecture("t5", "T5Config", {
        "": "T5Model", "Seq2SeqLM": "T5ForConditionalGeneration", "PreTraining": "T5ForConditionalGeneration",
        "SequenceClassification": "T5ForSequenceClassification", "TokenClassification": "T5ForTokenClassification",
        "QuestionAnswering": "T5ForQuestionAnswering", "TextEncoding": "T5EncoderModel"}, "T5TokenizerFast"),
    "bert-generation": Architecture("bert_generation", "BertGenerationConfig", {
        "": "BertGenerationEncoder", "CausalLM": "BertGenerationDecoder"}, "BertGenerationTokenizer"),
    "encoder-decoder": Architecture(".encoder_decoder", "EncoderDecoderConfig", {"Seq2SeqLM": "EncoderDecoderModel"}),
}

AUTO_HEADS = {
    "AutoModel": "", "AutoModelForPreTraining": "PreTraining", "AutoModelForMaskedLM": "MaskedLM",
    "AutoModelForSequenceClassification": "SequenceClassification",
    "AutoModelForMultipleChoice": "MultipleChoice", "AutoModelForTokenClassification": "TokenClassification",
    "AutoModelForQuestionAnswering": "QuestionAnswering", "AutoModelForCausalLM": "CausalLM",
    "AutoModelForNextSentencePrediction": "NextSentencePrediction", "AutoModelForSeq2SeqLM": "Seq2SeqLM",
}


def supported_model_types() -> list[str]:
    return sorted(REGISTRY)


def exported_class_modules() -> dict[str, str]:
    """Public class name -> module (relative to the package) that defines it; used by the lazy top level."""
    out = {}
    for arch in REGISTRY.values():
        for name in (arch.config, *arch.heads.values()):
            out[name] = module_path(arch)
        out[arch.tokenizer] = "tokenization"
        out[arch.tokenizer.removesuffix("Fast")] = "tokenization"
    out.update({name: "auto" for name in AUTO_HEADS})
    return out


def architecture(model_type: str | None) -> Architecture:
    if model_type not in REGISTRY:
        raise UnknownModelTypeError(
            f"Unknown model_type {model_type!r}. leanformers supports: {', '.join(supported_model_types())}. "
            f"Check the 'model_type' of config.json.")
    return REGISTRY[model_type]


def module_path(arch: Architecture) -> str:
    """The module (relative to the package) that defines an architecture's classes: models/<module>, or a
    top-level module for a ".name" (the encoder-decoder model, built from other registry entries)."""
    return arch.module[1:] if arch.module.startswith(".") else f"models.{arch.module}"


def _import(module: str, name: str):
    return getattr(importlib.import_module(f"leanformers.{module}"), name)


class AutoConfig:
    """Picks the config class from the `model_type` of config.json."""

    def __init__(self):
        raise TypeError("AutoConfig is not instantiated: use AutoConfig.from_pretrained(...) or .for_model(...).")

    @staticmethod
    def config_class(model_type: str):
        arch = architecture(model_type)
        return _import(module_path(arch), arch.config)

    @classmethod
    def for_model(cls, model_type: str, *args, **kwargs):
        return cls.config_class(model_type)(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        from .configuration import PretrainedConfig

        if kwargs.pop("trust_remote_code", False):
            refuse_remote_code()
        return_unused = kwargs.pop("return_unused_kwargs", False)
        config_dict, kwargs = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **kwargs)
        if "model_type" not in config_dict:
            raise ConfigError(f"The config of {pretrained_model_name_or_path} has no 'model_type'; add one of "
                              f"{', '.join(supported_model_types())} to config.json.")
        config_cls = cls.config_class(config_dict["model_type"])
        config, unused = config_cls.from_dict(config_dict, return_unused_kwargs=True, **kwargs)
        config.name_or_path = str(pretrained_model_name_or_path)
        return (config, unused) if return_unused else config

    @staticmethod
    def register(model_type: str, config_class, exist_ok: bool = False):
        raise ConfigError("Registering new model types is not supported; leanformers runs only its own code.")


class _AutoModel:
    """Base of AutoModel*: the head is fixed by the subclass, the architecture by config.model_type."""

    head = ""

    def __init__(self):
        raise TypeError(f"{type(self).__name__} is not instantiated: use .from_pretrained(...) or .from_config(...).")

    @classmethod
    def model_class(cls, config):
        arch = architecture(config.model_type)
        if cls.head not in arch.heads:
            known = ", ".join(f"AutoModelFor{h}" if h else "AutoModel" for h in arch.heads)
            raise ConfigError(f"{cls.__name__} has no '{config.model_type}' model; for '{config.model_type}' use "
                              f"one of: {known}.")
        return _import(module_path(arch), arch.heads[cls.head])

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls.model_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        from .hub import HUB_KWARGS

        if kwargs.pop("trust_remote_code", False):
            refuse_remote_code()
        config = kwargs.pop("config", None)
        if config is None:
            hub_kwargs = {k: v for k, v in kwargs.items() if k in HUB_KWARGS or k == "gguf_file"}
            source = pretrained_model_name_or_path
            if os.path.isfile(str(source)):
                source = os.path.dirname(os.path.abspath(str(source)))
            config = AutoConfig.from_pretrained(source, **hub_kwargs)
        return cls.model_class(config).from_pretrained(pretrained_model_name_or_path, *model_args, config=config,
                                                       **kwargs)


AutoModel = type("AutoModel", (_AutoModel,), {"head": ""})
for _name, _head in AUTO_HEADS.items():
    globals()[_name] = type(_name, (_AutoModel,), {"head": _head, "__doc__": f"Loads the {_head or 'base'} model."})


class AutoTokenizer:
    """Picks the tokenizer class from tokenizer_config.json (`tokenizer_class`), else from the model_type."""

    def __init__(self):
        raise TypeError("AutoTokenizer is not instantiated: use AutoTokenizer.from_pretrained(...).")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, **kwargs):
        from . import tokenization

        if kwargs.pop("trust_remote_code", False):
            refuse_remote_code()
        kwargs.pop("use_fast", None)  # every tokenizer here is backed by the Rust `tokenizers` engine
        if kwargs.get("gguf_file"):
            from .tokenization.gguf import load_gguf_tokenizer

            return load_gguf_tokenizer(pretrained_model_name_or_path, kwargs.pop("gguf_file"), **kwargs)
        config = kwargs.pop("config", None)
        name = tokenization.tokenizer_class_name(pretrained_model_name_or_path, **kwargs)
        if name is None:
            if config is None:
                config = _try_config(pretrained_model_name_or_path, kwargs)
            model_type = getattr(config, "model_type", None)
            name = REGISTRY[model_type].tokenizer if model_type in REGISTRY else "PreTrainedTokenizerFast"
        return tokenization.tokenizer_class(name).from_pretrained(pretrained_model_name_or_path, *inputs, **kwargs)


def _try_config(path, kwargs):
    from .hub import HUB_KWARGS

    try:
        return AutoConfig.from_pretrained(path, **{k: v for k, v in kwargs.items() if k in HUB_KWARGS})
    except (OSError, ConfigError):
        return None
