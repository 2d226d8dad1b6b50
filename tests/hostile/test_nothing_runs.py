"""Nothing in a checkpoint runs: callables planted in a pickle, a chat template, a GGUF string and
tokenizer_config.json / config.json (auto_map, tokenizer_class pointing at modules) are refused or ignored, and the
marker file each would create never appears."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch
from conftest import SPLADE, fixture_path

import leanformers
from leanformers.errors import ChatTemplateError, CheckpointError, ConfigError

from . import files

CONVERSATION = [{"role": "user", "content": "hi"}]


class _Runs:
    """Unpickling this calls `function(argument)`."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("function", [os.system, exec, eval, __import__])
def test_pickled_callables_never_run(tmp_path, function):
    marker = tmp_path / "ran"
    folder = files.tiny_bert(tmp_path / "bert", safe_serialization=False)
    argument = {os.system: f"touch {marker}", exec: f"open({str(marker)!r}, 'w').close()",
                eval: f"open({str(marker)!r}, 'w')", __import__: "this"}[function]
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["planted"] = _Runs(function, argument)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as caught:
        leanformers.AutoModelForMaskedLM.from_pretrained(folder)
    message = str(caught.value)
    assert "pytorch_model.bin" in message and "Python objects" in message and "weights_only=False" not in message
    assert not marker.exists()


def _marker_template(marker) -> list[str]:
    """Templates that would create `marker` if a template could reach Python's internals."""
    command = f"touch {marker}"
    return [
        "{{ cycler.__init__.__globals__.os.system('" + command + "') }}",
        "{{ joiner.__init__.__globals__['os'].system('" + command + "') }}",
        "{{ lipsum.__globals__['os'].popen('" + command + "').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{% if c.__name__ == 'Popen' %}"
        "{{ c(['touch', '" + str(marker) + "']) }}{% endif %}{% endfor %}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ raise_exception.__globals__['__builtins__']['exec']('import os; os.system(\"" + command + "\")') }}",
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('" + command + "') }}",
        "{{ request.application.__globals__.__builtins__.__import__('os').popen('" + command + "') }}",
        "{{ dict.__class__.__subclasses__() }}",
    ]


def test_chat_templates_cannot_reach_python(tmp_path):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(fixture_path(*SPLADE))
    marker = tmp_path / "ran"
    for template in _marker_template(marker):
        try:
            text = tokenizer.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False)
        except ChatTemplateError as err:  # refused: the message says it is the template's doing
            assert "chat template" in str(err)
        else:
            assert "os" not in text and "subprocess" not in text, (template, text)
        assert not marker.exists(), template


def test_gguf_strings_never_run(tmp_path):
    """A GGUF file whose chat template reaches for os.system and whose name is Python code: the model and the
    tokenizer load, the template is refused when used, nothing runs."""
    marker = tmp_path / "ran"
    hostile = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    code = f"__import__('os').system('touch {marker}')"
    files.tiny_gguf(tmp_path / "model.gguf", chat_template=hostile, name=code)
    tokenizer = leanformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="model.gguf")
    assert tokenizer.chat_template == hostile
    with pytest.raises(ChatTemplateError, match="unsafe"):
        tokenizer.apply_chat_template(CONVERSATION)
    model = leanformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="model.gguf")
    assert model.config.__dict__["_model_name_or_path"] == code  # kept as text, as transformers keeps it
    assert not marker.exists()


def test_tokenizer_config_naming_modules_runs_nothing(tmp_path):
    """auto_map and tokenizer_class naming arbitrary modules (one planted beside the files, which would create
    the marker on import) load the engine as saved; the module is never imported."""
    folder = tmp_path / "tok"
    shutil.copytree(fixture_path(*SPLADE), folder)
    marker = tmp_path / "ran"
    (folder / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    for tokenizer_class in ("planted_module.Evil", "os.system", "subprocess.Popen", "builtins.exec"):
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config.update(tokenizer_class=tokenizer_class, auto_map={"AutoTokenizer": ["planted_module.Evil", None]})
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        tokenizer = leanformers.AutoTokenizer.from_pretrained(folder)
        assert type(tokenizer).__name__ == "PreTrainedTokenizerFast"
        assert tokenizer("hi")["input_ids"]
    assert not marker.exists() and "planted_module" not in sys.modules
    with pytest.raises(ConfigError, match="never runs code"):
        leanformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)


def test_config_naming_modules_runs_nothing(tmp_path):
    folder = files.tiny_bert(tmp_path / "bert")
    marker = tmp_path / "ran"
    (folder / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config.update(auto_map={"AutoModel": "planted_module.Evil", "AutoConfig": "planted_module.EvilConfig"},
                  architectures=["planted_module.Evil"])
    (folder / "config.json").write_text(json.dumps(config))
    leanformers.AutoModelForMaskedLM.from_pretrained(folder)
    assert not marker.exists() and "planted_module" not in sys.modules
    with pytest.raises(ConfigError, match="never runs code"):
        leanformers.AutoModel.from_pretrained(folder, trust_remote_code=True)
