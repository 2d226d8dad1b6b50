"""TensorFlow checkpoints (tf_model.h5) loaded with from_tf=True, without TensorFlow.

The fixtures are tiny random TF models saved by transformers 4.55.4 with TensorFlow, next to the outputs of the
reference's own TF -> PyTorch conversion of the same file on fixed inputs (scripts/build_tf_fixtures.py, run by
scripts/setup.sh in the test-only .venv-tf).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import leanformers
from conftest import FIXTURES as FIXTURE_ROOT
from leanformers.errors import CheckpointError, ResourceNotFoundError
from test_hub import add_revision, tree_digest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = FIXTURE_ROOT / "tf-models"
BUILDER = ROOT / "scripts" / "build_tf_fixtures.py"
TF_PYTHON = ROOT / ".venv-tf" / "bin" / "python"


def _builder():
    spec = importlib.util.spec_from_file_location("build_tf_fixtures", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NAMES = [spec[0] for spec in _builder().specs()]


@pytest.fixture(scope="session")
def tf_fixtures() -> Path:
    """The fixture folders, built first where any is missing (needs .venv-tf: scripts/setup.sh makes it)."""
    if all((FIXTURES / name / "reference.pt").is_file() for name in NAMES):
        return FIXTURES
    assert TF_PYTHON.is_file(), f"TF fixtures missing in {FIXTURES} and no {TF_PYTHON} to build them: run " \
                                f"scripts/setup.sh"
    built = subprocess.run([str(TF_PYTHON), str(BUILDER)], capture_output=True, text=True)
    assert built.returncode == 0, f"{BUILDER} failed:\n{built.stdout[-2000:]}\n{built.stderr[-4000:]}"
    return FIXTURES


def _reference(folder: Path) -> dict:
    return torch.load(folder / "reference.pt", weights_only=True)


def _model_class(name: str):
    """A model class by name, from the registry (not every architecture has a top-level name)."""
    from leanformers.auto import REGISTRY

    module = next(arch.module for arch in REGISTRY.values() if name in arch.heads.values())
    # ".name": a top-level module (the encoder-decoder model), else one of leanformers.models
    return getattr(importlib.import_module(f"leanformers{module}" if module.startswith(".") else
                                           f"leanformers.models.{module}"), name)


def _assert_outputs(model, reference: dict):
    with torch.no_grad():
        ours = model(**reference["inputs"])
    assert reference["outputs"], "the fixture holds no outputs to compare"
    for key, expected in reference["outputs"].items():
        torch.testing.assert_close(ours[key], expected, atol=1e-5, rtol=0, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("name", NAMES)
def test_from_tf_equals_reference_conversion(tf_fixtures, name):
    folder = tf_fixtures / name
    reference = _reference(folder)
    model, info = _model_class(reference["class"]).from_pretrained(folder, from_tf=True, output_loading_info=True)
    # buffers computed at init (Transformer-XL's inv_freq) are not in TF files: missing for the reference too
    assert sorted(info["missing_keys"]) == reference["init_buffers"] and info["unexpected_keys"] == [], info
    ours = model.state_dict()
    for key, expected in reference["state_dict"].items():  # every weight, bit for bit
        assert torch.equal(ours[key], expected), key
    _assert_outputs(model, reference)


def test_auto_classes_take_from_tf(tf_fixtures):
    for name, auto in (("bert-sequenceclassification", "AutoModelForSequenceClassification"),
                       ("gpt2-lmheadmodel", "AutoModelForCausalLM"), ("t5-model", "AutoModel"),
                       ("bart-conditionalgeneration", "AutoModelForSeq2SeqLM")):
        reference = _reference(tf_fixtures / name)
        model = getattr(leanformers, auto).from_pretrained(tf_fixtures / name, from_tf=True)
        assert type(model).__name__ == reference["class"]
        _assert_outputs(model, reference)
    reference = _reference(tf_fixtures / "bert-model")  # the path of the .h5 file itself, config beside it
    _assert_outputs(leanformers.BertModel.from_pretrained(tf_fixtures / "bert-model" / "tf_model.h5", from_tf=True),
                    reference)


def test_pipeline_takes_from_tf(tf_fixtures, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(tf_fixtures / "bert-sequenceclassification", folder)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "the", "cat", "sat"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    classify = leanformers.pipeline("text-classification", model=str(folder), model_kwargs={"from_tf": True})
    model = leanformers.BertForSequenceClassification.from_pretrained(folder, from_tf=True)
    encoded = classify.tokenizer("the cat sat", return_tensors="pt")
    with torch.no_grad():
        probabilities = model(**encoded).logits.softmax(-1)[0]
    result = classify("the cat sat")[0]
    best = int(probabilities.argmax())
    assert result["label"] == model.config.id2label[best]
    assert result["score"] == pytest.approx(float(probabilities[best]), abs=1e-6)


def test_tensorflow_is_never_imported(tf_fixtures):
    code = ("import sys; import leanformers; "
            "sys.modules.update(dict.fromkeys(['tensorflow', 'tf_keras', 'keras'])); "  # an import would now fail
            f"leanformers.GPT2LMHeadModel.from_pretrained({str(tf_fixtures / 'gpt2-lmheadmodel')!r}, from_tf=True); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras') "
            "and sys.modules[m] is not None))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------- bad input
def _snapshot(folder: Path) -> dict:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture()
def bert_copy(tf_fixtures, tmp_path) -> Path:
    folder = tmp_path / "bert"
    shutil.copytree(tf_fixtures / "bert-model", folder)
    (folder / "reference.pt").unlink()
    return folder


def _fails(folder: Path, error, match: str, cls=None, **kwargs):
    before = _snapshot(folder)
    with pytest.raises(error, match=match):
        (cls or leanformers.BertModel).from_pretrained(folder, from_tf=True, **kwargs)
    assert _snapshot(folder) == before, "a failed load changed the checkpoint folder"


def test_truncated_h5(bert_copy):
    h5 = bert_copy / "tf_model.h5"
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    _fails(bert_copy, CheckpointError, f"Cannot read TensorFlow weights file {h5}.*truncated")


def test_not_hdf5(bert_copy):
    h5 = bert_copy / "tf_model.h5"
    h5.write_bytes(b"<html>not a weights file</html>" * 40)
    _fails(bert_copy, CheckpointError, f"Cannot read TensorFlow weights file {h5}")


def test_hdf5_without_keras_layout(bert_copy):
    import h5py

    h5 = bert_copy / "tf_model.h5"
    h5.unlink()
    with h5py.File(h5, "w") as f:
        f["weights"] = [1.0, 2.0]
    _fails(bert_copy, CheckpointError, "no 'layer_names' attribute.*not the Keras weights layout")


def test_h5_of_another_architecture(bert_copy, tf_fixtures):
    shutil.copy(tf_fixtures / "gpt2-model" / "tf_model.h5", bert_copy / "tf_model.h5")
    h5 = bert_copy / "tf_model.h5"
    _fails(bert_copy, CheckpointError, f"None of the weights of {h5} belongs to BertModel.*'transformer.wte.weight'"
                                       f".*another architecture")


def test_weight_of_the_wrong_size(bert_copy):
    config = (bert_copy / "config.json").read_text().replace('"vocab_size": 99', '"vocab_size": 98')
    (bert_copy / "config.json").write_text(config)
    _fails(bert_copy, CheckpointError, "TensorFlow weight 'tf_bert_model/bert/embeddings/word_embeddings/weight:0' "
                                       f"of {bert_copy / 'tf_model.h5'}.*'embeddings.word_embeddings.weight'")
    model, info = leanformers.BertModel.from_pretrained(bert_copy, from_tf=True, ignore_mismatched_sizes=True,
                                                        output_loading_info=True)
    assert [key for key, *_ in info["mismatched_keys"]] == ["embeddings.word_embeddings.weight"]
    assert tuple(model.embeddings.word_embeddings.weight.shape) == (98, 32)


def _drop_weight(h5: Path, weight: str, keep_listed: bool):
    """Remove one weight's data (and, unless `keep_listed`, its entry in the layer's weight_names)."""
    import h5py

    with h5py.File(h5, "r+") as f:
        layer = f[f.attrs["layer_names"][0]]
        del layer[weight]
        if not keep_listed:
            names = [w.decode() if isinstance(w, bytes) else w for w in layer.attrs["weight_names"]]
            layer.attrs["weight_names"] = [w for w in names if w != weight]


def test_missing_weight_is_reported_like_any_missing_key(bert_copy):
    weight = "tf_bert_model/bert/pooler/dense/bias:0"
    _drop_weight(bert_copy / "tf_model.h5", weight, keep_listed=False)
    model, info = leanformers.BertModel.from_pretrained(bert_copy, from_tf=True, output_loading_info=True)
    assert info["missing_keys"] == ["pooler.dense.bias"] and info["unexpected_keys"] == []
    assert not model.pooler.dense.bias.is_meta


def test_listed_weight_without_data(bert_copy):
    weight = "tf_bert_model/bert/pooler/dense/bias:0"
    _drop_weight(bert_copy / "tf_model.h5", weight, keep_listed=True)
    _fails(bert_copy, CheckpointError, f"{bert_copy / 'tf_model.h5'} lists the weight '{weight}' but does not hold it")


def test_only_tf_weights_without_from_tf_names_the_flag(bert_copy):
    with pytest.raises(ResourceNotFoundError, match=r"only TensorFlow weights \(tf_model.h5\): pass from_tf=True"):
        leanformers.BertModel.from_pretrained(bert_copy)
    with pytest.raises(ResourceNotFoundError, match="from_tf=True"):
        leanformers.AutoModel.from_pretrained(bert_copy)


def test_hub_cache_snapshot(tf_fixtures, tmp_path):
    """A repo id resolves tf_model.h5 in the hub cache; a damaged one there fails and leaves the cache as it was."""
    good = {name: (tf_fixtures / "gpt2-lmheadmodel" / name).read_bytes() for name in ("config.json", "tf_model.h5")}
    add_revision(tmp_path, "org/tf-gpt2", good)
    add_revision(tmp_path, "org/tf-damaged", {**good, "tf_model.h5": good["tf_model.h5"][:5000]})
    before = tree_digest(tmp_path)
    model = leanformers.AutoModelForCausalLM.from_pretrained("org/tf-gpt2", from_tf=True, cache_dir=tmp_path,
                                                             local_files_only=True)
    _assert_outputs(model, _reference(tf_fixtures / "gpt2-lmheadmodel"))
    with pytest.raises(CheckpointError, match=r"Cannot read TensorFlow weights file .*models--org--tf-damaged.*"
                                              r"tf_model\.h5"):
        leanformers.GPT2LMHeadModel.from_pretrained("org/tf-damaged", from_tf=True, cache_dir=tmp_path,
                                                    local_files_only=True)
    assert tree_digest(tmp_path) == before


def test_sharded_and_tensorflow1_checkpoints_are_refused(bert_copy):
    (bert_copy / "tf_model.h5").rename(bert_copy / "tf_model-00001-of-00001.h5")
    (bert_copy / "tf_model.h5.index.json").write_text('{"weight_map": {}}')
    _fails(bert_copy, CheckpointError, "sharded TensorFlow checkpoint .*tf_model.h5.index.json")
    (bert_copy / "model.ckpt.index").write_bytes(b"\0" * 16)
    _fails(bert_copy, CheckpointError, "TensorFlow 1 checkpoint .*model.ckpt.index.*only TensorFlow reads")


def test_from_tf_without_tf_weights(tmp_path):
    model = leanformers.BertModel(leanformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
                                                         num_attention_heads=4, intermediate_size=37))
    model.save_pretrained(tmp_path)
    with pytest.raises(ResourceNotFoundError, match=f"{tmp_path} has no tf_model.h5.*Drop from_tf=True"):
        leanformers.BertModel.from_pretrained(tmp_path, from_tf=True)
