"""Fixtures shared by the generation tests: each tiny model is built by the reference once, saved, and loaded
by us once, for the whole test run."""

import pytest

from .common import load_ours, save_reference, tokenizer_folder


def _pair(kind, tmp_path_factory):
    folder = tmp_path_factory.mktemp(kind)
    reference = save_reference(kind, folder)
    return reference, load_ours(kind, folder), folder


@pytest.fixture(scope="session")
def gpt2_pair(tmp_path_factory):
    return _pair("gpt2", tmp_path_factory)


@pytest.fixture(scope="session")
def llama_pair(tmp_path_factory):
    return _pair("llama", tmp_path_factory)


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def pair(request):
    return request.getfixturevalue(f"{request.param}_pair")


@pytest.fixture(scope="session")
def gpt2_tokenizer_folder(tmp_path_factory):
    return tokenizer_folder(tmp_path_factory)


@pytest.fixture(scope="session")
def reference_tokenizer(gpt2_tokenizer_folder):
    import transformers

    return transformers.GPT2TokenizerFast.from_pretrained(gpt2_tokenizer_folder)


@pytest.fixture(scope="session")
def our_tokenizer(gpt2_tokenizer_folder):
    from leanformers.tokenization import tokenizer_class

    return tokenizer_class("GPT2TokenizerFast").from_pretrained(gpt2_tokenizer_folder)
