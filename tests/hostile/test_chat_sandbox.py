"""Chat templates run in Jinja's immutable sandbox within a time and a size limit: reaching for Python internals,
endless loops and huge outputs are refused with a ChatTemplateError (also the matching jinja2 exception)."""

from __future__ import annotations

import time

import jinja2
import pytest
from conftest import SPLADE, fixture_path

import leanformers
from leanformers.errors import ChatTemplateError, TokenizerError
from leanformers.tokenization import chat

CONVERSATION = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def tokenizer():
    return leanformers.AutoTokenizer.from_pretrained(fixture_path(*SPLADE))


@pytest.fixture
def short_limit(monkeypatch):
    monkeypatch.setattr(chat, "TEMPLATE_TIME_LIMIT", 1.0)


def _render(tokenizer, template):
    return tokenizer.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False)


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ ().__class__.__base__.__subclasses__()[0] }}",
    "{{ messages.append(1) }}",
    "{% set ns = namespace(_secret=1) %}",
    "{{ raise_exception.__globals__['os'] }}",
])
def test_python_internals_are_refused(tokenizer, template):
    with pytest.raises(ChatTemplateError, match="chat template") as caught:
        _render(tokenizer, template)
    assert isinstance(caught.value, jinja2.exceptions.SecurityError | jinja2.exceptions.UndefinedError)


@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
])
def test_endless_loops_stop_at_the_time_limit(tokenizer, short_limit, template):
    start = time.monotonic()
    with pytest.raises(ChatTemplateError, match="longer than TEMPLATE_TIME_LIMIT"):
        _render(tokenizer, template)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("template, words", [
    ("{{ 'x' * 1000000000 }}", "repeated string"),
    ("{{ [0] * 1000000000 }}", "repeated string or list"),
    ("{{ 'a' | center(1000000000) }}", "do_center with the argument 1000000000"),
    ("{% set s = 'x' * 100000 %}{{ s | replace('x', s) }}", "the result of the filter do_replace"),
    ("{{ '%0999999999d' % 1 }}", "%-formatted string"),
    ("{{ '{:>999999999}'.format(1) }}", "formatted string"),
    ("{{ 10 ** 100000000 }}", "a power"),
    ("{% set ns = namespace(x='xx') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
     "namespace attribute 'x'"),
    ("{{ 'x'.ljust(1000000000) }}", "ljust\\(\\) with the argument 1000000000"),
])
def test_huge_values_are_refused_before_they_are_built(tokenizer, template, words):
    start = time.monotonic()
    with pytest.raises(ChatTemplateError, match=words):
        _render(tokenizer, template)
    assert time.monotonic() - start < 5


def test_output_size_limit(tokenizer, monkeypatch):
    monkeypatch.setattr(chat, "TEMPLATE_SIZE_LIMIT", 1000)
    with pytest.raises(ChatTemplateError, match="the rendered text would hold"):
        _render(tokenizer, "{% for i in range(1000) %}xxxxxxxx{% endfor %}")
    # the limit grows with the conversation: a long message renders
    long = [{"role": "user", "content": "y" * 100_000}]
    assert len(tokenizer.apply_chat_template(long, chat_template="{{ messages[0].content }}", tokenize=False)) \
        == 100_000


def test_template_errors_keep_their_jinja_class(tokenizer):
    with pytest.raises(ChatTemplateError, match="cannot be compiled \\(line 1\\)") as caught:
        _render(tokenizer, "{% for %}")
    assert isinstance(caught.value, jinja2.exceptions.TemplateSyntaxError)
    with pytest.raises(ChatTemplateError, match="refused the conversation: no system role") as caught:
        _render(tokenizer, "{{ raise_exception('no system role') }}")
    assert isinstance(caught.value, jinja2.exceptions.TemplateError) and isinstance(caught.value, TokenizerError)
    with pytest.raises(ChatTemplateError, match="RecursionError"):
        _render(tokenizer, "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
    with pytest.raises(ChatTemplateError, match="ZeroDivisionError"):
        _render(tokenizer, "{{ 1 / 0 }}")
    with pytest.raises(ChatTemplateError, match="SyntaxError"):
        _render(tokenizer, "{% break %}")


def test_real_templates_are_unaffected(tokenizer):
    template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    assert tokenizer.apply_chat_template(CONVERSATION, chat_template=template, tokenize=False,
                                         add_generation_prompt=True) == "<|user|>hi<|assistant|>"


@pytest.mark.parametrize("template", ["\ufdd1", "{{ messages[0]['content'] }}"])
def test_generation_marker_characters_in_the_output_are_refused(tokenizer, template):
    """U+FDD0/U+FDD1 mark {% generation %} blocks while rendering; written by a template or a message they get a
    clear error (the long fuzz run found a stray closing marker escaping as an UnboundLocalError)."""
    messages = [{"role": "user", "content": "a \ufdd1 b"}]
    with pytest.raises(TokenizerError, match="U\\+FDD1"):
        tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
