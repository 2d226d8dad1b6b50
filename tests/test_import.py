"""Import cost: `import leanformers` stays cheap (no torch), and every public name resolves."""

import json
import subprocess
import sys

import pytest

import leanformers


def run_fresh(code: str) -> dict:
    """Run `code` in a new interpreter (nothing imported yet) and return the JSON it prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_does_not_load_torch():
    found = run_fresh(
        "import json, sys\n"
        "import leanformers\n"
        "from leanformers import AutoConfig, AutoModel, AutoTokenizer, AutoModelForMaskedLM\n"
        "print(json.dumps({m: m in sys.modules for m in ('torch', 'transformers', 'safetensors', 'numpy')}))\n")
    assert found == {"torch": False, "transformers": False, "safetensors": False, "numpy": False}


def test_never_imports_transformers():
    found = run_fresh(
        "import json, sys\n"
        "import leanformers\n"
        "for name in dir(leanformers):\n"
        "    getattr(leanformers, name)\n"
        "print(json.dumps({'transformers': 'transformers' in sys.modules}))\n")
    assert found == {"transformers": False}


@pytest.mark.parametrize("name", sorted(set(dir(leanformers)) - {"__getattr__", "__dir__"}))
def test_public_name_resolves(name):
    assert getattr(leanformers, name) is not None


def test_model_classes_carry_their_names():
    # tokenizer names may be aliases (BertTokenizer is BertTokenizerFast); config and model classes never are
    for arch in leanformers.auto.REGISTRY.values():
        for name in (arch.config, *arch.heads.values()):
            assert getattr(leanformers, name).__name__ == name


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchModel'"):
        leanformers.NoSuchModel
    assert not hasattr(leanformers, "NoSuchModel")
