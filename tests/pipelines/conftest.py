"""Fixtures of the pipeline tests: tiny checkpoints built on demand, the reference pipelines (transformers 5.24 in
this process, transformers 4.55 in a subprocess) and a comparison of pipeline outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import fixture_path

from . import tiny_models
from .compare import assert_same  # noqa: F401 - test modules import it from here

SPIECE = ("sentencepiece", "test", "botchan_en_unigram_1000.model")


class TinyModels:
    """Folder of each tiny checkpoint, built the first time a test asks for it."""

    def __init__(self, root):
        self.root = root
        self.folders = {}

    def __call__(self, name: str) -> str:
        if name not in self.folders:
            folder = self.root / name
            if name in tiny_models.BERT_HEADS:
                tiny_models.build_bert(name, folder)
            elif name == "bert-qa-left":
                tiny_models.left_padded_copy(Path(self("bert-qa")), folder)
            elif name == "gpt2-chat":
                tiny_models.chat_copy(Path(self("gpt2")), folder)
            elif name in tiny_models.GENERATION_COPIES:
                source, settings = tiny_models.GENERATION_COPIES[name]
                tiny_models.generation_copy(Path(self(source)), folder, settings)
            elif name in ("t5", "mbart"):
                {"t5": tiny_models.build_t5, "mbart": tiny_models.build_mbart}[name](folder, fixture_path(*SPIECE))
            else:
                {"gpt2": tiny_models.build_gpt2, "bart": tiny_models.build_bart,
                 "roberta-ner": tiny_models.build_roberta_ner}[name](folder)
            self.folders[name] = str(folder)
        return self.folders[name]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    return TinyModels(tmp_path_factory.mktemp("pipeline-models"))


@pytest.fixture(scope="session")
def reference():
    """transformers 5.24's pipeline() (the reference for every task it still has)."""
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.pipeline


@pytest.fixture(scope="session")
def legacy(tiny):
    """Results of transformers 4.55 for every case of legacy_cases.CASES (one subprocess for the whole test run)."""
    from .legacy_cases import run_cases

    return run_cases(tiny)


@pytest.fixture(scope="session")
def ours(tiny):
    """Our pipeline for (task, model name, construction keywords), built once per test run."""
    import leanformers

    built = {}

    def get(task, model, **init):
        key = (task, model, repr(sorted(init.items())))
        if key not in built:
            built[key] = leanformers.pipeline(task, model=tiny(model), device="cpu", **init)
        return built[key]

    return get


@pytest.fixture(scope="session")
def theirs(tiny, reference):
    """The reference pipeline for (task, model name, construction keywords), built once per test run."""
    built = {}

    def get(task, model, **init):
        key = (task, model, repr(sorted(init.items())))
        if key not in built:
            built[key] = reference(task, model=tiny(model), device="cpu", **init)
        return built[key]

    return get


BATCHING = {"one-by-one": {}, "batched-sorted": {"batch_size": 3},
            "batched-in-order": {"batch_size": 3, "sort_by_length": False}}
