"""Fuzzing what people pass to a tokenizer (random Unicode, lone surrogates, NUL, wrong types and nesting) and the
chat templates that come with checkpoints (random Jinja built from the pieces real and hostile templates use)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SPLADE, fixture_path
from hypothesis import given, settings
from hypothesis import strategies as st

import leanformers
from leanformers.errors import ChatTemplateError, TokenizerError
from leanformers.tokenization import chat

from .fuzzing import budget, check_hostile

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def tokenizer():
    return leanformers.AutoTokenizer.from_pretrained(fixture_path(*SPLADE))


@pytest.fixture(scope="module")
def reference_tokenizer():
    import transformers

    return transformers.AutoTokenizer.from_pretrained(fixture_path(*SPLADE))


# any code point, lone surrogates and NUL included
_CHARS = st.characters(codec=None, exclude_categories=())
_TEXT = st.text(_CHARS, max_size=200)
_LEAF = _TEXT | st.none() | st.binary(max_size=8) | st.integers() | st.floats() | _TEXT.map(np.str_)
_INPUT = st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner), max_leaves=12)


@settings(max_examples=budget(375))
@given(text=_TEXT)
def test_random_text_matches_the_reference(tokenizer, reference_tokenizer, text):
    """Text the reference tokenizes gets the same ids; text it cannot (lone surrogates) is a TokenizerError that
    says where the bad character is."""
    try:
        expected = reference_tokenizer(text)["input_ids"]
    except Exception:  # noqa: BLE001 (the reference's own engine error on a lone surrogate)
        expected = None
    error = check_hostile("text", lambda: tokenizer(text), allowed=(TokenizerError,))
    if expected is not None:
        assert error is None and tokenizer(text)["input_ids"] == expected
    else:
        assert error is not None and "surrogate" in str(error)


@settings(max_examples=budget(375))
@given(value=_INPUT, pair=st.none() | _INPUT, split=st.booleans())
def test_random_inputs_raise_only_documented_errors(tokenizer, value, pair, split):
    """Any nesting of strings, bytes, numbers, None and numpy strings: a result, or a TokenizerError or TypeError
    whose message names the argument."""
    error = check_hostile("text input", lambda: tokenizer(value, pair, is_split_into_words=split, padding=True),
                          allowed=(TokenizerError, TypeError))
    if error is not None:
        message = str(error)
        assert "text" in message or "Text" in message or "Nothing to tokenize" in message, message


# ---------------------------------------------------------------------------------------------- chat templates
_PIECES = [
    "{% for m in messages %}", "{% endfor %}", "{{ m['content'] }}", "{{ m.role }}", "{% if add_generation_prompt %}",
    "{% endif %}", "{% else %}", "{{ bos_token }}", "{{ messages|tojson }}", "{{ raise_exception('no') }}",
    "{% set ns = namespace(x='ab') %}", "{% set ns.x = ns.x ~ ns.x %}", "{{ ns.x|length }}", "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ cycler.__init__.__globals__ }}", "{{ self.__init__ }}",
    "{{ lipsum.__globals__['os'] }}", "{{ range(100000)|list|length }}", "{% for i in range(100000) %}",
    "{{ 'x' * 100000 }}", "{{ 9 ** 9 ** 9 }}", "{{ '%099999999d' % 1 }}", "{{ 'a'|center(99999999) }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "{{ messages[0]['content']|upper }}", "{{ 1 / 0 }}",
    "{{ strftime_now('%Y') }}", "{% generation %}", "{% endgeneration %}", "{{", "}}", "{%", "%}", "text ", "\n",
    "{{ dict(a=1)|items|list }}", "{{ messages.append(1) }}", "{{ namespace(_x=1) }}", "{% break %}",
]


@settings(max_examples=budget(375))
@given(pieces=st.lists(st.sampled_from(_PIECES) | st.text(_CHARS, max_size=6), max_size=12))
def test_random_chat_templates(tokenizer, monkeypatch_limits, pieces):
    """A template assembled at random renders, or fails with a ChatTemplateError, within the time limit."""
    template = "".join(pieces)
    conversation = [{"role": "user", "content": "hi \ud800"[: 3]}, {"role": "assistant", "content": "yo"}]
    check_hostile("chat template", lambda: tokenizer.apply_chat_template(conversation, chat_template=template,
                                                                         tokenize=False),
                  allowed=(ChatTemplateError,))


@pytest.fixture(scope="module")
def monkeypatch_limits():
    """A one-second limit keeps the endless templates short (the check itself is the same as at 10 s)."""
    saved = chat.TEMPLATE_TIME_LIMIT
    chat.TEMPLATE_TIME_LIMIT = 1.0
    yield
    chat.TEMPLATE_TIME_LIMIT = saved
