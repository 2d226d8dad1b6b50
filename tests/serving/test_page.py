"""The web page in a real headless browser (Debian's chromium driven by Playwright): the chat streams an answer
into the page; each pipeline form shows its result. Screenshots go to tests/serving/screenshots/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fixture_path

from .conftest import MINILM, InProcessServer

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).parent / "screenshots"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is missing: run `apt-get install -y chromium` (scripts/setup.sh)"
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_llama_dir):
    from pipelines import tiny_models

    root = tmp_path_factory.mktemp("page-models")
    folders = {"chat": tiny_llama_dir, "minilm": fixture_path(*MINILM)}
    for name in ("bert-mlm", "bert-ner", "bert-qa", "bert-cls", "bert-nli"):
        folders[name] = tiny_models.build_bert(name, root / name)
    folders["t5"] = tiny_models.build_t5(root / "t5", fixture_path("sentencepiece", "test",
                                                                   "botchan_en_unigram_1000.model"))
    return folders


def _open(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)
    return page


def test_chat_streams_into_the_page(browser, models):
    server = InProcessServer(models["chat"], max_batch=2, max_len=128)
    try:
        page = _open(browser, server)
        assert page.is_visible("#chat") and not page.is_visible("#tasks")
        chunks = []
        page.on("response", lambda r: chunks.append(r.headers.get("content-type", "")))
        page.click("#chat-form summary")  # open the settings
        page.fill("#max-tokens", "12")
        page.fill("#prompt", "Hello there!")
        page.click("#send")
        page.wait_for_selector(".msg.assistant[data-done='1']", timeout=WAIT_MS)
        answer = page.inner_text(".msg.assistant")
        assert page.inner_text(".msg.user") == "Hello there!"
        assert answer.strip() and "[" not in answer[-3:]
        assert any(c.startswith("text/event-stream") for c in chunks)  # the answer arrived as a stream
        page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    finally:
        server.stop()


@pytest.mark.parametrize("model, tasks", [
    ("bert-mlm", ["fill-mask", "feature-extraction"]), ("bert-ner", ["token-classification"]),
    ("bert-qa", ["question-answering"]), ("bert-cls", ["text-classification"]),
    ("bert-nli", ["zero-shot-classification"]), ("t5", ["summarization", "translation"]),
    ("minilm", ["feature-extraction"])])
def test_each_pipeline_form_shows_its_result(browser, models, model, tasks):
    server = InProcessServer(models[model])
    try:
        page = _open(browser, server)
        for task in tasks:
            page.click(f"#tab-{task}")
            page.click(f"#form-{task} button[type=submit]")
            page.wait_for_selector(f"#result-{task}[data-done='1']", timeout=WAIT_MS)
            result = page.locator(f"#result-{task}")
            assert result.locator(".error").count() == 0, result.inner_text()
            expected = {"fill-mask": ".bar", "text-classification": ".bar", "zero-shot-classification": ".bar",
                        "token-classification": "mark", "question-answering": "mark", "feature-extraction": "td",
                        "summarization": "p.text", "translation": "p.text"}[task]
            assert result.locator(expected).count() >= 1, (task, result.inner_html())
            page.screenshot(path=str(SHOTS / f"{model}-{task}.png"), full_page=True)
    finally:
        server.stop()
