"""Chat templates (tokenization/chat.py) against the reference apply_chat_template on the same tokenizer.json:
rendered text, ids, batches, generation masks, continuation of the last message, tools and documents, named
templates, the template globals and filters, and the sandbox."""

from __future__ import annotations

import jinja2
import pytest
import transformers
from conftest import MINILM, fixture_path

import leanformers.tokenization as lt
from leanformers.errors import TokenizerError

CHATML = ("{% for m in messages %}{% if m['role'] == 'assistant' %}[A]{% generation %}{{ m['content'] }}[END]"
          "{% endgeneration %}\n{% else %}[{{ m['role'] }}] {{ m['content'] }}[END]\n{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}[A]{% endif %}")
FEATURES = """{%- set ns = namespace(turns=0) -%}
{{ bos_token }}
{%- if tools %}Tools: {{ tools | tojson }}
{% endif -%}
{%- if documents %}{% for d in documents %}<doc title="{{ d.title }}">{{ d.text }}</doc>
{% endfor %}{% endif -%}
{%- for m in messages %}
  {%- if m.role == 'skip' %}{% continue %}{% endif %}
  {%- set ns.turns = ns.turns + 1 %}
  {{ loop.index }}. {{ m.role | upper }}: {{ m.content | trim }} {{ dict(a=1) | tojson(indent=2, sort_keys=True) }}
  {%- if ns.turns > 3 %}{% break %}{% endif %}
{% endfor %}
turns={{ ns.turns }} extra={{ extra | default('none') }} year={{ strftime_now('%Y') }}"""
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "  Hello there, café 😀 "},
    {"role": "skip", "content": "hidden"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "Tell me a joke.", "name": None},
]
TOOL = {"type": "function", "function": {"name": "get_time", "description": "Current time",
                                          "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def pair():
    path = str(fixture_path(*MINILM, "tokenizer.json"))
    ours = lt.PreTrainedTokenizerFast(tokenizer_file=path, bos_token="[CLS]", eos_token="[SEP]", pad_token="[PAD]")
    theirs = transformers.PreTrainedTokenizerFast(tokenizer_file=path, bos_token="[CLS]", eos_token="[SEP]",
                                                  pad_token="[PAD]")
    ours.chat_template = theirs.chat_template = CHATML
    return ours, theirs


@pytest.mark.parametrize("options", [
    dict(tokenize=False), dict(tokenize=False, add_generation_prompt=True), dict(), dict(return_dict=False),
    dict(return_tensors="pt"), dict(return_assistant_tokens_mask=True),
    dict(return_assistant_tokens_mask=True, return_tensors="pt"), dict(truncation=True, max_length=12),
    dict(tokenize=False, continue_final_message=True), dict(continue_final_message=True),
])
def test_chatml_options_match(pair, options):
    ours, theirs = pair
    chat = CONVERSATION[:2] + CONVERSATION[3:4]
    got = ours.apply_chat_template(chat, **options)
    expected = theirs.apply_chat_template(chat, **options)
    if isinstance(expected, (str, list)):
        assert got == expected
        return
    assert sorted(got.keys()) == sorted(expected.keys())
    for key in expected:
        value = expected[key]
        assert (got[key].tolist() if hasattr(got[key], "tolist") else got[key]) == \
               (value.tolist() if hasattr(value, "tolist") else value), key


def test_batches_pad_like_the_reference(pair):
    ours, theirs = pair
    chats = [CONVERSATION[:2], CONVERSATION[:2] + CONVERSATION[3:]]
    for options in (dict(tokenize=False), dict(padding=True, return_tensors="pt", return_assistant_tokens_mask=True)):
        got = ours.apply_chat_template(chats, add_generation_prompt=False, **options)
        expected = theirs.apply_chat_template(chats, add_generation_prompt=False, **options)
        if options.get("tokenize") is False:
            assert got == expected
        else:
            for key in expected:
                assert got[key].tolist() == expected[key].tolist(), key


def test_template_features_match(pair):
    ours, theirs = pair
    for options in (dict(), dict(tools=[TOOL], extra="x"), dict(documents=[{"title": "T", "text": "body"}])):
        got = ours.apply_chat_template(CONVERSATION, chat_template=FEATURES, tokenize=False, **options)
        expected = theirs.apply_chat_template(CONVERSATION, chat_template=FEATURES, tokenize=False, **options)
        assert got == expected


def test_named_templates(pair):
    ours, theirs = pair
    templates = {"default": CHATML, "tool_use": FEATURES, "plain": "{{ messages[0]['content'] }}"}
    ours.chat_template = theirs.chat_template = templates
    try:
        for options in (dict(), dict(tools=[TOOL]), dict(chat_template="plain")):
            assert ours.apply_chat_template(CONVERSATION, tokenize=False, **options) == \
                   theirs.apply_chat_template(CONVERSATION, tokenize=False, **options)
        ours.chat_template = {"a": CHATML, "b": CHATML}
        with pytest.raises(TokenizerError, match="none is named 'default'"):
            ours.apply_chat_template(CONVERSATION)
    finally:
        ours.chat_template = theirs.chat_template = CHATML


def test_errors_and_sandbox(pair):
    ours, _ = pair
    with pytest.raises(jinja2.exceptions.TemplateError, match="no system role"):
        ours.apply_chat_template(CONVERSATION, chat_template="{{ raise_exception('no system role') }}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        ours.apply_chat_template(CONVERSATION, chat_template="{% set x = messages.append(1) %}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        ours.apply_chat_template(CONVERSATION, chat_template="{% set ns = namespace(_x=1) %}")
    assert ours.apply_chat_template(CONVERSATION, chat_template="{{ ''.__class__ }}|", tokenize=False) == "|"
    with pytest.raises(TokenizerError, match="empty conversation"):
        ours.apply_chat_template([])
    with pytest.raises(TokenizerError, match="cannot be used together"):
        ours.apply_chat_template(CONVERSATION, add_generation_prompt=True, continue_final_message=True)
    with pytest.raises(TokenizerError, match="no chat template"):
        lt.PreTrainedTokenizerFast(tokenizer_object=ours.backend_tokenizer).apply_chat_template(CONVERSATION)
    with pytest.raises(TokenizerError, match="JSON schemas"):
        ours.apply_chat_template(CONVERSATION, tools=[print])
