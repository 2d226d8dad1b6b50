"""The registry and the Auto* classes: the same model_type -> class choices as the reference, and clear refusals."""

import json

import pytest
import torch
import transformers
from transformers.models.auto import configuration_auto, modeling_auto

import leanformers
from leanformers import auto
from leanformers.errors import ConfigError, UnknownModelTypeError
from tests.parity.harness import TINY, random_inputs, save_reference_model
from tests.parity.legacy import REF434_PYTHON, run_legacy

# our head name -> the reference's auto mapping for that head
REFERENCE_MAPPINGS = {
    "": "MODEL_MAPPING_NAMES", "PreTraining": "MODEL_FOR_PRETRAINING_MAPPING_NAMES",
    "MaskedLM": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "SequenceClassification": "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "MultipleChoice": "MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
    "TokenClassification": "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "QuestionAnswering": "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "CausalLM": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "NextSentencePrediction": "MODEL_FOR_NEXT_SENTENCE_PREDICTION_MAPPING_NAMES",
    "Seq2SeqLM": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
}


# model types that transformers 5 dropped; their reference is 4.34.1, asked through its subprocess
OLD_REFERENCE_TYPES = ("retribert", "transfo-xl")
_OLD_NAMES = """
from transformers.models.auto import configuration_auto, modeling_auto
result = {"config": {t: configuration_auto.CONFIG_MAPPING_NAMES[t] for t in payload["types"]},
          "heads": {m: {t: getattr(modeling_auto, m).get(t) for t in payload["types"]} for m in payload["maps"]}}
"""


@pytest.fixture(scope="module")
def reference_names():
    """model_type -> (config class name, {mapping name: class name or None}) in the reference for that type."""
    old = run_legacy(_OLD_NAMES, {"types": list(OLD_REFERENCE_TYPES), "maps": list(REFERENCE_MAPPINGS.values())},
                     python=REF434_PYTHON)

    def names(model_type):
        if model_type in OLD_REFERENCE_TYPES:
            return old["config"][model_type], {m: old["heads"][m][model_type] for m in REFERENCE_MAPPINGS.values()}
        return configuration_auto.CONFIG_MAPPING_NAMES[model_type], {
            m: getattr(modeling_auto, m).get(model_type) for m in REFERENCE_MAPPINGS.values()}
    return names


@pytest.mark.parametrize("model_type", sorted(auto.REGISTRY))
def test_registry_names_match_reference(model_type, reference_names):
    arch = auto.REGISTRY[model_type]
    config_name, heads = reference_names(model_type)
    assert arch.config == config_name
    for head, mapping in REFERENCE_MAPPINGS.items():
        assert arch.heads.get(head) == heads[mapping], (model_type, head)


def test_every_auto_head_is_checked_and_exported():
    assert set(auto.AUTO_HEADS.values()) <= set(REFERENCE_MAPPINGS), "add the new head to REFERENCE_MAPPINGS"
    for name, head in auto.AUTO_HEADS.items():
        assert name == (f"AutoModelFor{head}" if head else "AutoModel")
        assert getattr(leanformers, name).head == head
        assert hasattr(transformers, name)


@pytest.mark.parametrize("model_type", sorted(auto.REGISTRY))
def test_auto_config_picks_class_by_model_type(tmp_path, model_type, reference_names):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    config = leanformers.AutoConfig.from_pretrained(tmp_path)
    if model_type in OLD_REFERENCE_TYPES:
        assert type(config).__name__ == reference_names(model_type)[0]
    else:
        assert type(config).__name__ == type(transformers.AutoConfig.from_pretrained(tmp_path)).__name__
    assert config.model_type == model_type


def test_for_model_matches_reference():
    ours = leanformers.AutoConfig.for_model("bert", hidden_size=64, num_labels=3)
    theirs = transformers.AutoConfig.for_model("bert", hidden_size=64, num_labels=3)
    assert type(ours) is leanformers.BertConfig
    assert (ours.hidden_size, ours.num_labels, ours.id2label) == (theirs.hidden_size, theirs.num_labels,
                                                                   theirs.id2label)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    reference = save_reference_model("BertModel", "BertConfig", folder, **TINY)
    return folder, reference


@pytest.mark.parametrize("auto_name", sorted(n for n, h in auto.AUTO_HEADS.items() if h in auto.REGISTRY["bert"].heads))
def test_from_config_builds_the_reference_class(tiny_bert, auto_name):
    folder, _ = tiny_bert
    config = leanformers.AutoConfig.from_pretrained(folder)
    model = getattr(leanformers, auto_name).from_config(config)
    reference = getattr(transformers, auto_name).from_config(transformers.AutoConfig.from_pretrained(folder))
    assert type(model).__name__ == type(reference).__name__
    assert model.config.hidden_size == TINY["hidden_size"]


def test_from_pretrained_matches_reference_outputs(tiny_bert):
    folder, reference = tiny_bert
    model = leanformers.AutoModel.from_pretrained(folder)
    assert type(model) is leanformers.BertModel
    inputs = random_inputs(vocab=TINY["vocab_size"])
    with torch.no_grad():
        ours, theirs = model(**inputs), reference(**inputs)
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=1e-5, rtol=1e-4)


def test_from_pretrained_given_a_weights_file(tiny_bert):
    folder, reference = tiny_bert
    model = leanformers.AutoModel.from_pretrained(folder / "model.safetensors")
    assert type(model) is leanformers.BertModel
    torch.testing.assert_close(model.embeddings.word_embeddings.weight, reference.embeddings.word_embeddings.weight)


def test_from_pretrained_keyword_overrides_reach_the_config(tiny_bert):
    folder, _ = tiny_bert
    model = leanformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=5,
                                                                            output_hidden_states=True)
    assert model.config.num_labels == 5 and model.config.output_hidden_states
    assert model.classifier.out_features == 5


def test_missing_head_names_the_alternatives():
    config = leanformers.AutoConfig.for_model("albert", hidden_size=32, num_attention_heads=4)
    with pytest.raises(ConfigError, match="AutoModelForCausalLM has no 'albert' model.*AutoModelForMaskedLM"):
        leanformers.AutoModelForCausalLM.from_config(config)
    with pytest.raises(ValueError):  # the reference refuses too
        transformers.AutoModelForCausalLM.from_config(transformers.AlbertConfig())


def test_unknown_model_type_lists_supported():
    with pytest.raises(UnknownModelTypeError) as info:
        leanformers.AutoConfig.for_model("not-a-model")
    message = str(info.value)
    assert "'not-a-model'" in message
    assert all(model_type in message for model_type in auto.supported_model_types())


@pytest.mark.parametrize("cls_name", ["AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoTokenizer"])
def test_auto_classes_are_not_instantiated(cls_name):
    with pytest.raises(TypeError, match="from_pretrained"):
        getattr(leanformers, cls_name)()


@pytest.mark.parametrize("cls_name", ["AutoConfig", "AutoModel", "AutoTokenizer"])
def test_remote_code_is_refused(tiny_bert, cls_name):
    folder, _ = tiny_bert
    with pytest.raises(ConfigError, match="trust_remote_code=True is not supported"):
        getattr(leanformers, cls_name).from_pretrained(folder, trust_remote_code=True)


def test_register_is_refused():
    with pytest.raises(ConfigError, match="not supported"):
        leanformers.AutoConfig.register("mine", leanformers.BertConfig)


def test_exported_classes_live_where_the_table_says():
    table = auto.exported_class_modules()
    for arch in auto.REGISTRY.values():
        assert table[arch.config] == auto.module_path(arch)
        assert all(table[name] == auto.module_path(arch) for name in arch.heads.values())
