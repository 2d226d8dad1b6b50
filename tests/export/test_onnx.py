"""ONNX: `leanformers export onnx` of each task validates in ONNX Runtime (<= 1e-4), and `pipeline(task,
model=folder)` on the exported folder runs on ONNX Runtime and gives the PyTorch pipeline's answers (encoder tasks,
text generation with the key/value cache as graph inputs and outputs, encoder-decoders as two files)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import leanformers
from leanformers import pipeline
from leanformers.cli import main
from leanformers.export import ORTModel, export_onnx
from leanformers.export.onnx import TOLERANCE
from conftest import fixture_path
from tests.pipelines import tiny_models
from tests.pipelines.compare import assert_same

SPIECE = ("sentencepiece", "test", "botchan_en_unigram_1000.model")  # the unigram model the tiny T5 reads
QUESTION = {"question": "Where do I work?", "context": "My name is Sylvain and I work at Hugging Face in Brooklyn."}
INPUTS = {
    "feature-extraction": ["The cat sat on the mat.", "Hello world!"],
    "fill-mask": ["Paris is the [MASK] of France.", "The [MASK] sat on the mat."],
    "text-classification": ["The cat sat on the mat.", "Where do I work? Hello world! Paris is great."],
    "token-classification": ["My name is Sylvain and I work at Hugging Face in Brooklyn.", "Paris is in France."],
    "question-answering": [QUESTION, dict(QUESTION, question="What is my name?")],
}
# (task, tiny checkpoint): BERT for every task, RoBERTa (byte-level BPE) and DistilBERT for one task each
CASES = [("feature-extraction", "bert-base"), ("fill-mask", "bert-mlm"), ("text-classification", "bert-cls"),
         ("token-classification", "bert-ner"), ("question-answering", "bert-qa"),
         ("token-classification", "roberta-ner"), ("text-classification", "distilbert-cls")]


def _distilbert_cls(folder, bert_folder):
    """A tiny DistilBERT classifier sharing the tiny BERT's WordPiece tokenizer."""
    torch.manual_seed(0)
    config = leanformers.DistilBertConfig(vocab_size=len(tiny_models.WORDPIECE), dim=32, n_layers=2, n_heads=4,
                                          hidden_dim=37, num_labels=3)
    leanformers.DistilBertForSequenceClassification(config).save_pretrained(folder)
    for name in ("tokenizer_config.json", "tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        if (bert_folder / name).exists():
            shutil.copy(bert_folder / name, folder / name)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-sources")
    built = {}

    def get(name):
        if name not in built:
            folder = root / name
            if name == "roberta-ner":
                tiny_models.build_roberta_ner(folder)
            elif name == "distilbert-cls":
                _distilbert_cls(folder, get_path("bert-cls"))
            else:
                tiny_models.build_bert(name, folder)
            built[name] = folder
        return built[name]

    get_path = get
    return get


@pytest.mark.parametrize("task,name", CASES)
def test_export_validates_and_pipeline_gives_pytorch_answers(task, name, checkpoint, tmp_path, capsys):
    source = checkpoint(name)
    assert main(["export", "onnx", str(source), str(tmp_path), "--task", task]) == 0
    printed = capsys.readouterr().out
    difference = float(printed.rsplit("max difference ", 1)[1].split()[0])
    assert difference <= TOLERANCE
    assert json.loads((tmp_path / "onnx_export.json").read_text())["task"] == task
    onnx_pipe, torch_pipe = pipeline(task, model=str(tmp_path)), pipeline(task, model=str(source))
    assert isinstance(onnx_pipe.model, ORTModel)
    inputs = INPUTS[task]
    assert_same(onnx_pipe(inputs, batch_size=2), torch_pipe(inputs, batch_size=2), atol=1e-4)
    assert_same(onnx_pipe(inputs[0]), torch_pipe(inputs[0]), atol=1e-4)


def _llama(folder, gpt2_folder):
    """A tiny Llama (grouped-query attention, rotary positions) on the tiny GPT-2's byte-level BPE tokenizer."""
    vocab = json.loads((gpt2_folder / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = leanformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                     initializer_range=0.2, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    leanformers.LlamaForCausalLM(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (gpt2_folder / name).exists():
            shutil.copy(gpt2_folder / name, folder / name)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_text_generation_with_past_key_values(name, tmp_path_factory, tmp_path):
    """Greedy decoding of a left-padded batch, step by step with the cache in and out of ONNX Runtime."""
    root = tmp_path_factory.mktemp("onnx-decoders")
    tiny_models.build_gpt2(root / "gpt2")
    if name == "llama":
        _llama(root / "llama", root / "gpt2")
    source = root / name
    difference = export_onnx(source, tmp_path, task="text-generation")
    assert difference <= TOLERANCE
    onnx_pipe, torch_pipe = pipeline("text-generation", model=str(tmp_path)), pipeline("text-generation",
                                                                                       model=str(source))
    assert onnx_pipe.model.can_generate() and "past_key_values.0.key" in onnx_pipe.model.input_names
    prompts = ["The cat sat on", "Hello world! Where do I"]
    settings = dict(max_new_tokens=6, do_sample=False)
    assert onnx_pipe(prompts, batch_size=2, **settings) == torch_pipe(prompts, batch_size=2, **settings)
    assert onnx_pipe(prompts[0], **settings) == torch_pipe(prompts[0], **settings)
    # past 64 positions: the graph holds no key/value capacity of the example it was recorded with
    longer = dict(max_new_tokens=72, min_new_tokens=72, do_sample=False)
    assert onnx_pipe(prompts[1], **longer) == torch_pipe(prompts[1], **longer)


@pytest.mark.parametrize("name", ["bart", "t5"])
def test_text2text_generation_encoder_and_decoder_files(name, tmp_path_factory, tmp_path):
    """encoder_model.onnx + decoder_model.onnx (self-attention cache in and out): greedy and beam search on a
    padded batch give the PyTorch pipeline's texts."""
    source = tmp_path_factory.mktemp("onnx-seq2seq") / name
    if name == "t5":
        tiny_models.build_t5(source, fixture_path(*SPIECE))
    else:
        tiny_models.build_bart(source)
    assert export_onnx(source, tmp_path, task="text2text-generation") <= TOLERANCE
    assert (tmp_path / "encoder_model.onnx").is_file() and (tmp_path / "decoder_model.onnx").is_file()
    onnx_pipe = pipeline("text2text-generation", model=str(tmp_path))
    torch_pipe = pipeline("text2text-generation", model=str(source))
    texts = ["The cat sat on the mat.", "Hello world! Where do I work?"]
    for settings in (dict(max_new_tokens=6), dict(max_new_tokens=5, num_beams=3)):
        assert onnx_pipe(texts, batch_size=2, **settings) == torch_pipe(texts, batch_size=2, **settings)


def test_exported_task_must_serve_the_pipeline_task(checkpoint, tmp_path):
    export_onnx(checkpoint("bert-mlm"), tmp_path, task="fill-mask")
    with pytest.raises(ValueError, match="exported for 'fill-mask'.*text-classification"):
        pipeline("text-classification", model=str(tmp_path))


def test_export_of_an_unsupported_task_is_refused(checkpoint, tmp_path):
    assert main(["export", "onnx", str(checkpoint("bert-mlm")), str(tmp_path), "--task", "summarization"]) == 1
