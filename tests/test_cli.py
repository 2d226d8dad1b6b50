"""The `leanformers` command, run as a subprocess: `run` for several tasks (arguments, text lines and JSON lines on
stdin, JSON lines out), `download` from a local hub on 127.0.0.1 (HF_ENDPOINT, include/exclude globs, local-dir,
a transfer that breaks off and resumes), `env`, help texts and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

import leanformers
from tests.hub_server import HubHandler, blob_id, local_hub
from tests.pipelines.compare import assert_same
from tests.pipelines.tiny_models import build_bert

COMMAND = Path(sys.executable).parent / "leanformers"
TEXTS = ["the cat sat on the mat .", "hello world", "where do i work ? my name is sylvain"]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_ENDPOINT")
           and "proxy" not in k.lower()}
    env.update(NO_PROXY="127.0.0.1,localhost", HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1", **extra)
    return env


def cli(*args, stdin: str | None = None, env: dict | None = None, timeout: float = 240):
    if not COMMAND.exists():
        pytest.fail(f"The console script {COMMAND} is missing: reinstall the package (pip install -e .).")
    return subprocess.run([str(COMMAND), *map(str, args)], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env or clean_env(HF_HUB_OFFLINE="1"))


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def plain(value):
    """Our pipeline's result as JSON would carry it."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else v.tolist()))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-models")
    return {name: build_bert(name, root / name) for name in ("bert-cls", "bert-mlm", "bert-ner", "bert-qa")}


# ---------------------------------------------------------------------- run
def test_run_text_classification_from_arguments_and_stdin(models):
    pipe = leanformers.pipeline("text-classification", model=str(models["bert-cls"]), device="cpu")
    expected = [plain(pipe(text, top_k=2)) for text in TEXTS]
    done = cli("run", "sentiment-analysis", "--model", models["bert-cls"], "--top-k", 2, *TEXTS)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == expected
    piped = cli("run", "text-classification", "--model", models["bert-cls"], "--batch-size", 2, "--top-k", 2,
                stdin="\n".join(TEXTS) + "\n\n")
    assert piped.returncode == 0, piped.stderr
    assert_same(json_lines(piped.stdout), expected)  # batched: equal up to float rounding


def test_run_fill_mask_and_ner(models):
    fill = leanformers.pipeline("fill-mask", model=str(models["bert-mlm"]), device="cpu")
    masked = ["the cat [MASK] on the mat .", "paris is the [MASK] of [MASK] ."]
    done = cli("run", "fill-mask", "--model", models["bert-mlm"], "--device", "cpu", "--top-k", 3, *masked)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [plain(fill(text, top_k=3)) for text in masked]

    ner = leanformers.pipeline("ner", model=str(models["bert-ner"]), device="cpu")
    lines = [json.dumps(text) for text in TEXTS]  # JSON strings on stdin
    done = cli("run", "ner", "--model", models["bert-ner"], "--aggregation-strategy", "simple",
               "--param", 'ignore_labels=["O", "B-PER"]', stdin="\n".join(lines))
    assert done.returncode == 0, done.stderr
    expected = [plain(ner(text, aggregation_strategy="simple", ignore_labels=["O", "B-PER"])) for text in TEXTS]
    assert json_lines(done.stdout) == expected


def test_run_question_answering_json_lines(models):
    qa = leanformers.pipeline("question-answering", model=str(models["bert-qa"]), device="cpu")
    context = "my name is sylvain and i work at hugging face in brooklyn"
    items = [{"question": "where do i work ?", "context": context}, {"question": "what is my name ?",
                                                                      "context": context}]
    done = cli("run", "question-answering", "--model", models["bert-qa"], "--top-k", 2,
               stdin="\n".join(json.dumps(item) for item in items))
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [plain(qa(**item, top_k=2)) for item in items]
    with_context = cli("run", "question-answering", "--model", models["bert-qa"], "--context", context,
                       "where do i work ?")
    assert json_lines(with_context.stdout) == [plain(qa(**items[0]))]


@pytest.mark.parametrize("args, message", [
    (["run", "sentiment-analysys", "--model", "x", "hi"], "Unknown task 'sentiment-analysys'"),
    (["run", "text-classification", "--model", "/no/such/folder", "hi"], "/no/such/folder"),
    (["run", "text-classification", "--param", "oops", "hi"], "KEY=VALUE"),
])
def test_run_errors_go_to_stderr(args, message):
    done = cli(*args)
    assert done.returncode in (1, 2)
    assert message in done.stderr and done.stdout == ""
    assert "Traceback" not in done.stderr


def test_bad_input_in_a_run(models):
    done = cli("run", "text-classification", "--model", models["bert-cls"], "fine", "")
    assert done.returncode == 1
    assert "empty string" in done.stderr


def _default_interrupt():
    """In the child before it runs the command: a test run started in the background (`pytest &`) has Ctrl-C
    ignored, and an ignored signal stays ignored across exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_run_exits_130(models):
    """Ctrl-C while `run` waits for more standard input: exit status 130, a one-line note, no traceback."""
    process = subprocess.Popen([str(COMMAND), "run", "text-classification", "--model", str(models["bert-cls"])],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=clean_env(HF_HUB_OFFLINE="1"), preexec_fn=_default_interrupt)
    try:
        process.stdin.write(TEXTS[0] + "\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["label"]  # the first result came: now it waits for more
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)  # input still open: a lost interrupt fails here, not as an end of input
        _, stderr = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr


# ---------------------------------------------------------------------- help, env
@pytest.mark.parametrize("args, words", [
    ([], ["run", "download", "env"]), (["run"], ["--model", "--batch-size", "--top-k", "--device"]),
    (["download"], ["--include", "--exclude", "--local-dir", "--revision", "--repo-type", "--cache-dir",
                    "--token", "--quiet"]),
    (["env"], ["--json"])])
def test_help(args, words):
    done = cli(*args, "--help")
    assert done.returncode == 0
    for word in words:
        assert word in done.stdout


def test_usage_errors_exit_2():
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("run", "ner", "--batch-size", "many").returncode == 2


def test_env(tmp_path):
    done = cli("env", "--json", env=clean_env(HF_HUB_CACHE=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["leanformers"] == leanformers.__version__ and info["hub_cache"] == str(tmp_path)
    assert info["torch"] and "cuda" in info["devices"]
    text = cli("env", env=clean_env(HF_HUB_CACHE=str(tmp_path)))
    assert str(tmp_path) in text.stdout and "torch" in text.stdout


# ---------------------------------------------------------------------- download
REPO = "tiny-org/bert-cls"
CHUNK = 10 * 1024 * 1024  # huggingface_hub writes what it receives in pieces of this size


@pytest.fixture
def hub(models):
    files = {p.name: p.read_bytes() for p in sorted(models["bert-cls"].iterdir()) if p.is_file()}
    files["weights-extra.bin"] = os.urandom(CHUNK + 200_000)
    files["docs/notes.txt"] = b"a file in a subfolder\n"
    with local_hub() as server:
        server.add(REPO, files)
        yield server


def test_download_whole_repo_then_run_offline(hub, tmp_path, models):
    cache = tmp_path / "cache"
    done = cli("download", REPO, "--cache-dir", cache, "--quiet", env=clean_env(HF_ENDPOINT=hub.url))
    assert done.returncode == 0, done.stderr
    snapshot = Path(done.stdout.strip())
    repo = hub.repos[REPO]
    assert snapshot == cache / "models--tiny-org--bert-cls" / "snapshots" / repo.commit
    assert sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()) == sorted(repo.files)
    for name, data in repo.files.items():
        assert (snapshot / name).read_bytes() == data
        assert (snapshot / name).resolve().name == blob_id(name, data)  # the cache's blobs/<etag> layout
    assert any(path.startswith(f"/api/models/{REPO}") for _, path, _ in hub.requests)
    # the filled cache serves the model offline, by repo id
    run = cli("run", "text-classification", "--model", REPO, "hello world",
              env=clean_env(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache)))
    assert run.returncode == 0, run.stderr
    pipe = leanformers.pipeline("text-classification", model=str(models["bert-cls"]), device="cpu")
    assert json_lines(run.stdout) == plain(pipe(["hello world"]))


def test_download_include_exclude_and_files(hub, tmp_path):
    env = clean_env(HF_ENDPOINT=hub.url)
    done = cli("download", REPO, "--include", "*.json", "docs/*", "--exclude", "tokenizer*", "--local-dir",
               tmp_path / "json", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "json"
    got = sorted(str(p.relative_to(tmp_path / "json")) for p in (tmp_path / "json").rglob("*")
                 if p.is_file() and ".cache" not in p.parts)
    assert got == ["config.json", "docs/notes.txt"]

    one = cli("download", REPO, "config.json", "--local-dir", tmp_path / "one", "--quiet", env=env)
    assert one.returncode == 0, one.stderr
    assert Path(one.stdout.strip()) == tmp_path / "one" / "config.json"
    assert (tmp_path / "one" / "config.json").read_bytes() == hub.repos[REPO].files["config.json"]

    two = cli("download", REPO, "config.json", "docs/notes.txt", "--cache-dir", tmp_path / "cache", "--quiet",
              env=env)
    assert two.returncode == 0, two.stderr
    snapshot = Path(two.stdout.strip())
    assert sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()) == \
        ["config.json", "docs/notes.txt"]


def test_download_repo_type_revision_token_and_progress(hub, tmp_path, monkeypatch):
    """--repo-type picks the datasets URLs and cache folder, --revision a commit, --token goes in every request;
    progress bars go to stderr unless --quiet."""
    seen = []
    route = HubHandler._route

    def recording(handler, body):
        seen.append((urlparse(handler.path).path, handler.headers.get("Authorization")))
        return route(handler, body)

    monkeypatch.setattr(HubHandler, "_route", recording)
    env, commit = clean_env(HF_ENDPOINT=hub.url), hub.repos[REPO].commit
    names = ["config.json", "docs/notes.txt"]
    done = cli("download", REPO, *names, "--repo-type", "dataset", "--revision", commit, "--token", "hf_local_test",
               "--cache-dir", tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    snapshot = Path(done.stdout.strip())
    assert snapshot == tmp_path / "datasets--tiny-org--bert-cls" / "snapshots" / commit
    for name in names:
        assert (snapshot / name).read_bytes() == hub.repos[REPO].files[name]
    requests = [(path, auth) for path, auth in seen if REPO in path]
    assert requests and all(path.startswith(("/api/datasets/", "/datasets/")) for path, _ in requests)
    assert {auth for _, auth in requests} == {"Bearer hf_local_test"}
    assert "Fetching 2 files" in done.stderr and "100%" in done.stderr
    quiet = cli("download", REPO, *names, "--cache-dir", tmp_path / "quiet", "--quiet", env=env)
    assert quiet.returncode == 0 and "Fetching" not in quiet.stderr and "%" not in quiet.stderr


def test_download_errors(hub, tmp_path):
    env = clean_env(HF_ENDPOINT=hub.url)
    missing = cli("download", "nobody/nothing", "--cache-dir", tmp_path, "--quiet", env=env)
    assert missing.returncode == 1 and "repository not found" in missing.stderr
    revision = cli("download", REPO, "--revision", "v9", "--cache-dir", tmp_path, "--quiet", env=env)
    assert revision.returncode == 1 and "revision" in revision.stderr.lower()
    both = cli("download", REPO, "config.json", "--include", "*.json", env=env)
    assert both.returncode == 2 and "not both" in both.stderr


def wait_for_partial(cache: Path, size: int, process, timeout: float = 120) -> Path:
    """The `.incomplete` file of a running download, once it holds `size` bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        for path in cache.rglob("*.incomplete"):
            if path.stat().st_size >= size:
                return path
        time.sleep(0.2)
    pytest.fail(f"no partial download of {size} bytes appeared under {cache}")


def test_interrupted_transfer_resumes(hub, tmp_path):
    """The connection breaks off past the file's first piece; the download picks up from there with a byte range
    and ends with the right bytes."""
    env = clean_env(HF_ENDPOINT=hub.url)
    name, data = "weights-extra.bin", hub.repos[REPO].files["weights-extra.bin"]
    hub.break_transfer(name, after=CHUNK + 1000, times=1)
    done = cli("download", REPO, name, "--local-dir", tmp_path / "a", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a" / name).read_bytes() == data
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(name)]
    assert ranges == [None, f"bytes={CHUNK}-"]


def test_killed_download_leaves_a_usable_cache(hub, tmp_path):
    """A run killed half-way through a file (huggingface_hub 2.4 keeps each run's partial file private and starts
    a new run afresh) leaves nothing in the cache that a later run would mistake for the file."""
    env = clean_env(HF_ENDPOINT=hub.url)
    name, data = "weights-extra.bin", hub.repos[REPO].files["weights-extra.bin"]
    hub.break_transfer(name, after=CHUNK + 1000, times=1, stall=True)  # the connection hangs mid-file
    cache = tmp_path / "cache"
    killed = subprocess.Popen([str(COMMAND), "download", REPO, name, "--cache-dir", str(cache), "--quiet"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_partial(cache, CHUNK, killed)
    finally:
        killed.kill()
        killed.wait(timeout=30)
        hub.release.set()
    assert not [p for p in cache.rglob("*") if p.is_file() and p.name == blob_id(name, data)]
    rerun = cli("download", REPO, name, "--cache-dir", cache, "--quiet", env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert Path(rerun.stdout.strip()).read_bytes() == data
