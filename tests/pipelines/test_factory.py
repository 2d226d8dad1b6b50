"""pipeline(): task names and aliases, models given as folders, repo ids or objects, the default checkpoint of a task
(from the cache, or a clear error offline), devices and dtypes, and the errors for tasks and heads that do not fit."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

import leanformers
from leanformers.errors import ConfigError, ResourceNotFoundError
from leanformers.pipelines import (PipelineInputError, TaskModelMismatchError, UnknownTaskError,
                                   get_supported_tasks)

from .conftest import assert_same

TEXTS = ["the cat sat on the mat .", "hello world"]


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError) as info:
        leanformers.pipeline("sentiment-analysys", model="unused")
    message = str(info.value)
    assert "'sentiment-analysys'" in message
    for task in get_supported_tasks():
        assert task in message
    assert isinstance(info.value, KeyError)  # what transformers raises, for callers that catch it


@pytest.mark.parametrize("task, model, cls", [
    ("sentiment-analysis", "bert-cls", "TextClassificationPipeline"),
    ("text-classification", "bert-cls", "TextClassificationPipeline"),
    ("ner", "bert-ner", "TokenClassificationPipeline"),
    ("token-classification", "bert-ner", "TokenClassificationPipeline"),
    ("zero-shot-classification", "bert-nli", "ZeroShotClassificationPipeline"),
    ("question-answering", "bert-qa", "QuestionAnsweringPipeline"),
    ("fill-mask", "bert-mlm", "FillMaskPipeline"),
    ("feature-extraction", "bert-base", "FeatureExtractionPipeline"),
    ("text-generation", "gpt2", "TextGenerationPipeline"),
    ("summarization", "bart", "SummarizationPipeline"),
    ("text2text-generation", "t5", "Text2TextGenerationPipeline")])
def test_task_names_and_aliases(tiny, task, model, cls):
    pipe = leanformers.pipeline(task, model=tiny(model), device="cpu")
    assert type(pipe).__name__ == cls and pipe.task == task
    assert getattr(leanformers, cls) is type(pipe)  # exported at the top level


def test_translation_task_names(tiny):
    pipe = leanformers.pipeline("translation_en_to_de", model=tiny("t5"), device="cpu")
    assert type(pipe).__name__ == "TranslationPipeline" and pipe.task == "translation_en_to_de"
    assert pipe.prefix == "translate English to German: "  # from the config's task_specific_params
    assert pipe._preprocess_params == {"src_lang": "en", "tgt_lang": "de"}


def test_loaded_objects_give_the_same_results(tiny, ours):
    folder = tiny("bert-cls")
    model = leanformers.AutoModelForSequenceClassification.from_pretrained(folder)
    tokenizer = leanformers.AutoTokenizer.from_pretrained(folder)
    pipe = leanformers.pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    assert pipe.model is model and pipe.tokenizer is tokenizer
    assert_same(pipe(TEXTS, top_k=None), ours("text-classification", "bert-cls")(TEXTS, top_k=None), atol=0)
    # a model object alone: its tokenizer is found from where the model was loaded
    assert_same(leanformers.pipeline("text-classification", model=model, device="cpu")(TEXTS), pipe(TEXTS), atol=0)


def test_task_read_from_the_architectures(tiny):
    assert type(leanformers.pipeline(model=tiny("bert-ner"), device="cpu")).__name__ == "TokenClassificationPipeline"
    assert type(leanformers.pipeline(model=tiny("gpt2"), device="cpu")).__name__ == "TextGenerationPipeline"


def test_config_and_tokenizer_given_as_folders(tiny):
    pipe = leanformers.pipeline("ner", model=tiny("bert-ner"), config=tiny("bert-ner"), tokenizer=tiny("bert-ner"),
                                device="cpu")
    assert pipe.model.config.id2label[1] == "B-PER"


def test_head_that_does_not_fit_the_task(tiny):
    model = leanformers.AutoModel.from_pretrained(tiny("bert-base"))
    with pytest.raises(TaskModelMismatchError, match=r"BertModel cannot serve the task 'text-classification'"):
        leanformers.pipeline("text-classification", model=model, tokenizer=tiny("bert-base"))
    with pytest.raises(TaskModelMismatchError, match=r"'fill-mask' needs a model with a \*ForMaskedLM head.*gpt2"):
        leanformers.pipeline("fill-mask", model=tiny("gpt2"))
    assert issubclass(TaskModelMismatchError, ConfigError)


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, PipelineInputError, "needs a task"),
    ({"task": "ner", "tokenizer": "some/tokenizer"}, PipelineInputError, "tokenizer was given without a model"),
    ({"task": "ner", "model": "x", "trust_remote_code": True}, ConfigError, "trust_remote_code"),
    ({"task": 3}, UnknownTaskError, "must be a string"),
    ({"task": "translation"}, UnknownTaskError, "translation_en_to_fr"),
    ({"task": "translation_en_to_ja"}, UnknownTaskError, "no default model for translation_en_to_ja"),
])
def test_construction_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        leanformers.pipeline(**kwargs)


@pytest.mark.parametrize("task, model, bad, message", [
    ("feature-extraction", "bert-base", "", "empty string"), ("feature-extraction", "bert-base", None, "None"),
    ("summarization", "bart", "", "empty string"), ("summarization", "bart", None, "None"),
    ("translation_en_to_de", "t5", " ", "empty string"), ("text2text-generation", "t5", None, "None"),
    ("text-generation", "gpt2", None, "None"),  # an empty prompt is fine: generation starts from nothing
])
def test_none_and_empty_inputs(ours, task, model, bad, message):
    """The tasks whose own test files do not cover it; each input of a list is checked too."""
    pipe = ours(task, model)
    with pytest.raises(PipelineInputError, match=message):
        pipe(bad)
    with pytest.raises(PipelineInputError, match=message):
        pipe(["the cat sat", bad], batch_size=2)


def test_default_model_offline_names_the_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ResourceNotFoundError) as info:
        leanformers.pipeline("sentiment-analysis")
    message = str(info.value)
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in message
    assert "714eb0f" in message and "model=" in message and "leanformers download" in message


_UNREACHABLE = """
import sys, time
import huggingface_hub.utils._http as http


class NoWait:  # the hub client waits 1+2+4+8+8 s between its retries: skip the waits, keep the retries
    sleep = staticmethod(lambda seconds: None)

    def __getattr__(self, name):
        return getattr(time, name)


http.time = NoWait()
import leanformers
leanformers.pipeline(sys.argv[1])
"""


def test_default_model_with_the_hub_out_of_reach(tmp_path):
    """Not offline, but nothing answers at HF_ENDPOINT (a closed port of 127.0.0.1) and the cache is empty."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") and "proxy" not in key.lower()}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=str(tmp_path), NO_PROXY="127.0.0.1")
    done = subprocess.run([sys.executable, "-c", _UNREACHABLE, "ner"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 1
    error = done.stderr[done.stderr.rindex("leanformers.errors.ResourceNotFoundError"):]
    assert "'dbmdz/bert-large-cased-finetuned-conll03-english' (revision 4c53496)" in error
    assert "hub cannot be reached" in error and "model=" in error
    assert f"HEAD http://127.0.0.1:{port}/dbmdz/" in done.stderr  # the hub really was tried


def test_default_checkpoints_are_those_of_transformers(legacy):
    """The same repo ids and revisions as transformers 5.24, and as 4.55 for the tasks 5.x dropped."""
    from transformers.pipelines import SUPPORTED_TASKS as REFERENCE

    from leanformers.pipelines.tasks import TASKS, check_task, default_model

    from .legacy_cases import DEFAULTS, LEGACY_TASKS

    assert sorted(task for task, entry in TASKS.items() if entry.legacy) == sorted(LEGACY_TASKS)
    for task, entry in TASKS.items():
        if not entry.legacy:
            assert default_model(task, entry, None) == REFERENCE[task]["default"]["model"], task
    ours = {f"translation_{src}_to_{tgt}" for src, tgt in TASKS["translation"].defaults_by_option}
    assert ours == {task for task in legacy[DEFAULTS] if task.startswith("translation_")}
    for task, expected in legacy[DEFAULTS].items():
        assert list(default_model(*check_task(task))) == expected, task


def test_default_model_from_the_cache(tmp_path, monkeypatch, tiny, ours):
    """The default checkpoint at its pinned revision, laid out as huggingface_hub caches it."""
    repo = tmp_path / "models--distilbert--distilbert-base-uncased-finetuned-sst-2-english"
    commit = "714eb0f" + "0" * 33
    snapshot = repo / "snapshots" / commit
    shutil.copytree(tiny("bert-cls"), snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    pipe = leanformers.pipeline("sentiment-analysis", device="cpu")
    assert_same(pipe(TEXTS), ours("text-classification", "bert-cls")(TEXTS), atol=0)
    # the same cached repo named by its id and commit
    by_id = leanformers.pipeline("text-classification", revision=commit, device="cpu",
                                 model="distilbert/distilbert-base-uncased-finetuned-sst-2-english")
    assert_same(by_id(TEXTS), pipe(TEXTS), atol=0)


@pytest.mark.parametrize("device", ["cpu", -1, torch.device("cpu")])
def test_devices(tiny, device):
    pipe = leanformers.pipeline("ner", model=tiny("bert-ner"), device=device)
    assert pipe.device == torch.device("cpu") and pipe.model.device == torch.device("cpu")


def test_device_map(tiny):
    pipe = leanformers.pipeline("ner", model=tiny("bert-ner"), device_map="cpu")
    assert pipe.device == pipe.model.device == torch.device("cpu")
    with pytest.raises(PipelineInputError, match="device_map was given twice"):
        leanformers.pipeline("ner", model=tiny("bert-ner"), device_map="cpu", model_kwargs={"device_map": "cpu"})


@pytest.mark.parametrize("kwargs", [{"torch_dtype": torch.bfloat16}, {"dtype": "bfloat16"},
                                    {"model_kwargs": {"torch_dtype": torch.bfloat16}}])
def test_dtypes(tiny, kwargs):
    pipe = leanformers.pipeline("text-classification", model=tiny("bert-cls"), device="cpu", **kwargs)
    assert pipe.model.dtype == torch.bfloat16 and pipe.dtype == torch.bfloat16
    assert pipe(TEXTS[0])[0]["label"] in {"NEGATIVE", "NEUTRAL", "POSITIVE"}


def test_dtype_given_twice(tiny):
    with pytest.raises(PipelineInputError, match="dtype was given twice"):
        leanformers.pipeline("ner", model=tiny("bert-ner"), dtype=torch.float32,
                             model_kwargs={"dtype": torch.float32})


def test_save_pretrained_round_trip(tiny, tmp_path, ours):
    ours("text-classification", "bert-cls").save_pretrained(tmp_path / "saved")
    pipe = leanformers.pipeline("text-classification", model=str(tmp_path / "saved"), device="cpu")
    assert_same(pipe(TEXTS), ours("text-classification", "bert-cls")(TEXTS), atol=0)


def test_importing_pipelines_stays_cheap():
    code = ("import sys, leanformers, leanformers.pipelines; leanformers.pipeline; "
            "from leanformers.pipelines import get_supported_tasks; get_supported_tasks(); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
