"""PretrainedConfig and BertConfig against the reference: loading, keyword overrides, saving, and bad input."""

import copy
import json
import math
import pickle

import pytest
import torch
import transformers

from leanformers import AutoConfig, BertConfig, PretrainedConfig
from leanformers.errors import ConfigError, ResourceNotFoundError, UnknownModelTypeError

# keys that name the writing library or the source folder, never a setting
VOLATILE = {"transformers_version", "leanformers_version", "_name_or_path"}

# A config.json as a fine-tuned classifier ships it: JSON string keys in id2label, a setting neither library
# knows, and a nested value that must survive untouched.
CLASSIFIER_JSON = {
    "model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": 64,
    "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37, "vocab_size": 99,
    "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
    "label2id": {"negative": 0, "neutral": 1, "positive": 2},
    "torch_dtype": "float16", "transformers_version": "4.41.0",
    "custom_setting": {"nested": [1, None, "naïve ☕"], "flag": True},
}


def settings(config) -> dict:
    """The settings of a config of either library, without the keys that name who wrote it."""
    return {k: v for k, v in config.to_dict().items() if k not in VOLATILE}


def assert_same_settings(ours, theirs):
    """Every setting the reference has is present in ours with the same value."""
    mine, ref = settings(ours), settings(theirs)
    missing = sorted(set(ref) - set(mine))
    assert not missing, f"settings missing from ours: {missing}"
    assert {k: mine[k] for k in ref} == ref


@pytest.fixture
def classifier_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CLASSIFIER_JSON, indent=2), encoding="utf-8")
    return tmp_path


# ---------------------------------------------------------------------- defaults and construction
def test_bert_defaults_match_reference():
    assert_same_settings(BertConfig(), transformers.BertConfig())


def test_base_defaults_match_reference():
    assert_same_settings(PretrainedConfig(), transformers.PretrainedConfig())


LABEL_CASES = [
    dict(num_labels=3),
    dict(id2label={"0": "neg", "1": "pos"}),
    dict(id2label={"0": "neg", "1": "pos"}, num_labels=3),
    dict(id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1}),
    dict(label2id={"a": 0, "b": 1, "c": 2}),
    dict(),
]


@pytest.mark.parametrize("kwargs", LABEL_CASES, ids=lambda kw: ",".join(kw) or "none")
def test_label_maps_like_reference(kwargs):
    ours, theirs = BertConfig(**copy.deepcopy(kwargs)), transformers.BertConfig(**copy.deepcopy(kwargs))
    assert (ours.num_labels, ours.id2label, ours.label2id) == (theirs.num_labels, theirs.id2label, theirs.label2id)


def test_num_labels_setter_like_reference():
    ours, theirs = BertConfig(), transformers.BertConfig()
    for n in (4, 4, 1):
        ours.num_labels = theirs.num_labels = n
        assert (ours.id2label, ours.label2id) == (theirs.id2label, theirs.label2id)


def test_single_label_classification_needs_two_labels():
    with pytest.raises(ValueError):
        transformers.BertConfig(problem_type="single_label_classification", num_labels=1)
    with pytest.raises(ConfigError, match="num_labels"):
        BertConfig(problem_type="single_label_classification", num_labels=1)


def test_unknown_problem_type_is_refused():
    with pytest.raises(ConfigError, match="problem_type='ranking'"):
        BertConfig(problem_type="ranking")


def test_dtype_names_become_torch_dtypes():
    ours, theirs = BertConfig(torch_dtype="bfloat16"), transformers.BertConfig(torch_dtype="bfloat16")
    assert ours.dtype == theirs.dtype == torch.bfloat16
    assert ours.torch_dtype == torch.bfloat16
    assert ours.to_dict()["dtype"] == theirs.to_dict()["dtype"]
    assert "torch_dtype" not in ours.to_dict()


def test_equality_copy_and_pickle():
    config = BertConfig(hidden_size=48, extra_setting=[1, 2])
    assert config == copy.deepcopy(config) == pickle.loads(pickle.dumps(config))
    assert config != BertConfig(hidden_size=64, extra_setting=[1, 2])
    assert sorted(config) == sorted(k for k in vars(config) if not k.startswith("_"))


def test_attribute_map_aliases():
    class AliasConfig(PretrainedConfig):
        model_type = "alias-test"
        defaults = {"hidden_size": 8}
        attribute_map = {"n_embd": "hidden_size"}

    config = AliasConfig(n_embd=16)
    assert config.hidden_size == config.n_embd == 16
    config.n_embd = 24
    assert config.hidden_size == 24
    assert "n_embd" not in config.to_dict() and config.to_dict()["hidden_size"] == 24
    with pytest.raises(AttributeError, match="no attribute 'missing_setting'"):
        config.missing_setting


# ---------------------------------------------------------------------- loading, overrides, saving
def test_from_pretrained_matches_reference(classifier_dir):
    ours, theirs = BertConfig.from_pretrained(classifier_dir), transformers.BertConfig.from_pretrained(classifier_dir)
    assert_same_settings(ours, theirs)
    assert ours.id2label == theirs.id2label and all(isinstance(k, int) for k in ours.id2label)
    assert ours.custom_setting == CLASSIFIER_JSON["custom_setting"]
    assert ours.dtype == theirs.dtype == torch.float16
    assert ours.name_or_path == str(classifier_dir)


@pytest.mark.parametrize("overrides", [
    dict(output_hidden_states=True),
    dict(num_labels=5),
    dict(output_attentions=True, hidden_dropout_prob=0.0),
    dict(custom_setting="replaced", not_a_setting=1),
    dict(id2label={0: "a", 1: "b"}),
], ids=lambda kw: ",".join(kw))
def test_keyword_overrides_like_reference(classifier_dir, overrides):
    ours, unused = BertConfig.from_pretrained(classifier_dir, return_unused_kwargs=True, **copy.deepcopy(overrides))
    theirs, their_unused = transformers.BertConfig.from_pretrained(
        classifier_dir, return_unused_kwargs=True, **copy.deepcopy(overrides))
    assert unused == their_unused
    assert_same_settings(ours, theirs)
    assert (ours.num_labels, ours.id2label, ours.label2id) == (theirs.num_labels, theirs.id2label, theirs.label2id)


def test_from_dict_and_unused_kwargs_like_reference():
    data = {"hidden_size": 40, "something_new": 3}
    ours, unused = BertConfig.from_dict(copy.deepcopy(data), return_unused_kwargs=True, something_new=4,
                                        output_attentions=True, zzz=5)
    theirs, their_unused = transformers.BertConfig.from_dict(copy.deepcopy(data), return_unused_kwargs=True,
                                                             something_new=4, output_attentions=True, zzz=5)
    assert unused == their_unused
    assert_same_settings(ours, theirs)


def test_get_config_dict_like_reference(classifier_dir):
    ours, ours_left = PretrainedConfig.get_config_dict(classifier_dir, cache_dir=None, foo=1)
    theirs, theirs_left = transformers.PretrainedConfig.get_config_dict(classifier_dir, cache_dir=None, foo=1)
    assert ours == theirs == CLASSIFIER_JSON
    assert ours_left == theirs_left == {"foo": 1}


def test_from_json_file_and_file_path(classifier_dir):
    path = classifier_dir / "config.json"
    from_file = BertConfig.from_json_file(path)
    assert_same_settings(from_file, transformers.BertConfig.from_json_file(path))
    assert BertConfig.from_pretrained(path) == from_file


def test_dict_and_json_round_trip(classifier_dir):
    config = BertConfig.from_pretrained(classifier_dir)
    assert BertConfig.from_dict(config.to_dict()) == config
    for use_diff in (True, False):
        text = config.to_json_string(use_diff=use_diff)
        assert BertConfig.from_dict(json.loads(text)) == config
        assert_same_settings(BertConfig.from_dict(json.loads(text)),
                             transformers.BertConfig.from_dict(json.loads(text)))


def test_diff_dict_is_what_differs():
    config = BertConfig(hidden_size=48, extra_setting=1)
    diff = config.to_diff_dict()
    assert diff["hidden_size"] == 48 and diff["extra_setting"] == 1 and diff["model_type"] == "bert"
    assert "num_hidden_layers" not in diff and "vocab_size" not in diff


def test_special_floats_are_portable_json(tmp_path):
    config = BertConfig(clip_values=[float("inf"), float("-inf")], threshold=float("nan"))
    text = config.to_json_string()

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    json.loads(text, parse_constant=refuse)
    config.save_pretrained(tmp_path)
    for loaded in (BertConfig.from_pretrained(tmp_path), transformers.BertConfig.from_pretrained(tmp_path)):
        assert loaded.clip_values == [float("inf"), float("-inf")] and math.isnan(loaded.threshold)


def test_our_save_loads_in_reference(tmp_path, classifier_dir):
    ours = BertConfig.from_pretrained(classifier_dir, output_hidden_states=True)
    ours.save_pretrained(tmp_path)
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(theirs) is transformers.BertConfig
    assert_same_settings(ours, theirs)
    assert theirs.custom_setting == CLASSIFIER_JSON["custom_setting"]


def test_reference_save_loads_in_ours(tmp_path, classifier_dir):
    theirs = transformers.BertConfig.from_pretrained(classifier_dir, num_labels=4, output_hidden_states=True)
    theirs.save_pretrained(tmp_path)
    ours = AutoConfig.from_pretrained(tmp_path)
    assert type(ours) is BertConfig
    assert_same_settings(ours, theirs)
    assert ours.custom_setting == theirs.custom_setting


def test_unknown_keys_round_trip_untouched(tmp_path, classifier_dir):
    first = BertConfig.from_pretrained(classifier_dir)
    first.save_pretrained(tmp_path / "once")
    second = BertConfig.from_pretrained(tmp_path / "once")
    second.save_pretrained(tmp_path / "twice")
    once = json.loads((tmp_path / "once" / "config.json").read_text(encoding="utf-8"))
    twice = json.loads((tmp_path / "twice" / "config.json").read_text(encoding="utf-8"))
    assert once == twice
    assert once["custom_setting"] == CLASSIFIER_JSON["custom_setting"]


def test_auto_config_picks_class_and_for_model(classifier_dir):
    config = AutoConfig.from_pretrained(classifier_dir)
    assert type(config) is BertConfig
    small = AutoConfig.for_model("bert", hidden_size=64)
    reference = transformers.AutoConfig.for_model("bert", hidden_size=64)
    assert type(small) is BertConfig
    assert_same_settings(small, reference)


# ---------------------------------------------------------------------- bad input
def test_missing_folder(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ResourceNotFoundError, match="No folder .*no-such-model.*Check the path"):
        BertConfig.from_pretrained(str(missing))
    with pytest.raises(ResourceNotFoundError, match="no-such-model"):
        AutoConfig.from_pretrained(str(missing))


def test_folder_without_config(tmp_path):
    with pytest.raises(ResourceNotFoundError, match="has no file config.json"):
        AutoConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize("content, why", [
    ("{not json", "is not valid JSON"),
    ("[1, 2, 3]", "holds a JSON list"),
    (b"\xff\xfe\x00garbage", "not a UTF-8 text file"),
])
def test_config_that_is_not_a_json_object(tmp_path, content, why):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=why) as info:
        AutoConfig.from_pretrained(tmp_path)
    assert str(path) in str(info.value)


def test_unknown_model_type_lists_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "made-up-arch"}))
    with pytest.raises(UnknownModelTypeError, match="'made-up-arch'") as info:
        AutoConfig.from_pretrained(tmp_path)
    assert "bert" in str(info.value) and "model_type" in str(info.value)
    with pytest.raises(UnknownModelTypeError, match="made-up-arch"):
        AutoConfig.for_model("made-up-arch")


def test_config_without_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ConfigError, match="no 'model_type'"):
        AutoConfig.from_pretrained(tmp_path)


def test_config_of_another_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "albert"}))
    with pytest.raises(ConfigError, match="holds a 'albert' config.*AutoConfig"):
        BertConfig.from_pretrained(tmp_path)


def test_remote_code_is_refused(classifier_dir):
    with pytest.raises(ConfigError, match="trust_remote_code"):
        BertConfig.from_pretrained(classifier_dir, trust_remote_code=True)


def test_save_pretrained_into_a_file(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="expects a folder"):
        BertConfig().save_pretrained(target)
