"""Repo ids resolved through a real hub cache layout (built offline), the environment variables that move it, offline
misses, unsafe file names, and a download from a local HF_ENDPOINT mirror."""

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import huggingface_hub
import pytest
import torch
import transformers

import leanformers
from leanformers import hub
from leanformers.errors import CheckpointError, ResourceNotFoundError, UnsafePathError
from tests.parity.harness import TINY, save_reference_model

REPO = "tiny-org/tiny-bert"
WORDS = ["the", "cat", "sat", "on", "mat", ".", ",", "!", "hello", "world", "hub", "cache"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz",
         *("##" + c for c in "abcdefghijklmnopqrstuvwxyz"), *WORDS]
TEXTS = ["the cat sat on the mat!", "hello world, hub cache.", "zebras"]


# ---------------------------------------------------------------------- building a cache like huggingface_hub's
def write_checkpoint(folder: Path, seed: int) -> Path:
    """A tiny BERT and its WordPiece tokenizer, both saved by the reference library."""
    save_reference_model("BertModel", "BertConfig", folder, seed=seed, **{**TINY, "vocab_size": len(VOCAB)})
    tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(VOCAB)})
    tokenizer.save_pretrained(folder)
    return folder


def blob_name(name: str, data: bytes) -> str:
    """The hub names LFS blobs by sha256 and regular files by their git blob sha1."""
    if name.endswith(".safetensors"):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_hash(files: dict) -> str:
    return hashlib.sha1(json.dumps({n: blob_name(n, d) for n, d in sorted(files.items())}).encode()).hexdigest()


def folder_files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def add_revision(cache: Path, repo_id: str, files: dict, refs=("main",)) -> str:
    """Lay out one commit of a repo: blobs/<hash>, snapshots/<commit>/<name> -> ../../blobs/<hash>, refs/<branch>."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = commit_hash(files)
    for name, data in files.items():
        blob = repo / "blobs" / blob_name(name, data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # no newline: huggingface_hub reads the file as the hash
    return commit


def tree_digest(root: Path) -> str:
    """Hash of every path, link target and file content under root."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            digest.update(str(path.relative_to(root)).encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two revisions of one repo: `main` and a branch `v1` with other weights."""
    base = tmp_path_factory.mktemp("checkpoints")
    return {"main": write_checkpoint(base / "main", seed=0), "v1": write_checkpoint(base / "v1", seed=1)}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, checkpoints):
    cache = tmp_path_factory.mktemp("hf-cache")
    commits = {"main": add_revision(cache, REPO, folder_files(checkpoints["main"]), refs=("main",)),
               "v1": add_revision(cache, REPO, folder_files(checkpoints["v1"]), refs=("v1",))}
    config_only = {"config.json": (checkpoints["main"] / "config.json").read_bytes()}
    add_revision(cache, "tiny-org/config-only", config_only)
    escape = {**config_only, "model.safetensors.index.json": json.dumps(
        {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": "../x.safetensors"}}).encode()}
    add_revision(cache, "tiny-org/escape", escape)
    return cache, commits


def encode(tokenizer) -> dict:
    return dict(tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt"))


@pytest.fixture(scope="module")
def inputs(checkpoints):
    """Model inputs made by the reference tokenizer, so model loads are checked apart from tokenizer loads."""
    return encode(transformers.AutoTokenizer.from_pretrained(checkpoints["main"]))


def reference_outputs(inputs, folder_or_repo, **kwargs) -> torch.Tensor:
    model = transformers.AutoModel.from_pretrained(folder_or_repo, **kwargs)
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def our_outputs(inputs, folder_or_repo, **kwargs) -> torch.Tensor:
    config = leanformers.AutoConfig.from_pretrained(folder_or_repo, **kwargs)
    model = leanformers.AutoModel.from_pretrained(folder_or_repo, **kwargs)
    assert type(config) is leanformers.BertConfig and type(model) is leanformers.BertModel
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def assert_same_tokens(ours, theirs):
    assert {k: v.tolist() for k, v in encode(ours).items()} == {k: v.tolist() for k, v in encode(theirs).items()}


# ---------------------------------------------------------------------- the layout itself
def test_cache_layout_is_what_huggingface_hub_reads(hub_cache):
    cache, commits = hub_cache
    info = huggingface_hub.scan_cache_dir(cache)
    assert not info.warnings
    repo = next(r for r in info.repos if r.repo_id == REPO)
    assert {rev.commit_hash for rev in repo.revisions} == set(commits.values())
    assert {ref for rev in repo.revisions for ref in rev.refs} == {"main", "v1"}


# ---------------------------------------------------------------------- where the cache is
def test_load_with_cache_dir_matches_reference(hub_cache, inputs):
    cache, _ = hub_cache
    torch.testing.assert_close(our_outputs(inputs, REPO, cache_dir=cache),
                               reference_outputs(inputs, REPO, cache_dir=cache))


def test_tokenizer_from_cache_matches_reference(hub_cache):
    cache, _ = hub_cache
    assert_same_tokens(leanformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache),
                       transformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache))


def test_load_with_hf_hub_cache_env(hub_cache, inputs, monkeypatch):
    cache, _ = hub_cache
    expected = reference_outputs(inputs, REPO, cache_dir=cache)
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert hub.hub_cache_dir() == str(cache)
    torch.testing.assert_close(our_outputs(inputs, REPO), expected)
    assert_same_tokens(leanformers.AutoTokenizer.from_pretrained(REPO), reference_tokenizer)


def test_load_with_hf_home_env(hub_cache, inputs, tmp_path, monkeypatch):
    cache, _ = hub_cache
    expected = reference_outputs(inputs, REPO, cache_dir=cache)
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache)
    home = tmp_path / "hf-home"
    home.mkdir()
    (home / "hub").symlink_to(cache, target_is_directory=True)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    assert hub.hub_cache_dir() == str(home / "hub")
    torch.testing.assert_close(our_outputs(inputs, REPO), expected)
    assert_same_tokens(leanformers.AutoTokenizer.from_pretrained(REPO), reference_tokenizer)


# ---------------------------------------------------------------------- revisions and offline switches
@pytest.mark.parametrize("which", ["branch", "commit", "main-commit"])
def test_revision_branch_and_commit(hub_cache, checkpoints, inputs, which):
    cache, commits = hub_cache
    revision = {"branch": "v1", "commit": commits["v1"], "main-commit": commits["main"]}[which]
    source = "main" if which == "main-commit" else "v1"
    ours = our_outputs(inputs, REPO, cache_dir=cache, revision=revision)
    torch.testing.assert_close(ours, reference_outputs(inputs, REPO, cache_dir=cache, revision=revision))
    torch.testing.assert_close(ours, reference_outputs(inputs, checkpoints[source]))
    other = "v1" if source == "main" else "main"
    assert not torch.allclose(ours, reference_outputs(inputs, checkpoints[other]))
    assert_same_tokens(leanformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache, revision=revision),
                       transformers.AutoTokenizer.from_pretrained(REPO, cache_dir=cache, revision=revision))


@pytest.mark.parametrize("offline_env", ["1", None])
def test_local_files_only(hub_cache, inputs, monkeypatch, offline_env):
    cache, _ = hub_cache
    if offline_env is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline_env)
    torch.testing.assert_close(our_outputs(inputs, REPO, cache_dir=cache, local_files_only=True),
                               reference_outputs(inputs, REPO, cache_dir=cache))


def test_hf_hub_offline_env_alone(hub_cache, inputs, monkeypatch):
    cache, _ = hub_cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.is_offline()
    torch.testing.assert_close(our_outputs(inputs, REPO, cache_dir=cache),
                               reference_outputs(inputs, REPO, cache_dir=cache))


# ---------------------------------------------------------------------- offline misses change nothing
@pytest.mark.parametrize("load, repo, filename, revision", [
    (lambda c: leanformers.AutoConfig.from_pretrained("nobody/missing-repo", cache_dir=c),
     "nobody/missing-repo", "config.json", None),
    (lambda c: leanformers.AutoModel.from_pretrained("nobody/missing-repo", cache_dir=c),
     "nobody/missing-repo", "config.json", None),
    (lambda c: hub.resolve_file(REPO, "missing_file.json", cache_dir=c), REPO, "missing_file.json", None),
    (lambda c: leanformers.AutoConfig.from_pretrained(REPO, cache_dir=c, revision="no-such-branch"),
     REPO, "config.json", "no-such-branch"),
    (lambda c: leanformers.AutoConfig.from_pretrained(REPO, cache_dir=c, revision="f" * 40),
     REPO, "config.json", "f" * 40),
], ids=["unknown-repo-config", "unknown-repo-model", "missing-file", "missing-branch", "missing-commit"])
def test_offline_miss_names_repo_file_and_cache(hub_cache, load, repo, filename, revision):
    cache, _ = hub_cache
    before = tree_digest(cache)
    with pytest.raises(ResourceNotFoundError) as info:
        load(cache)
    message = str(info.value)
    assert f"'{repo}'" in message and f"'{filename}'" in message and str(cache) in message
    assert "offline" in message
    if revision:
        assert revision in message
    assert tree_digest(cache) == before


def test_repo_without_weights(hub_cache):
    cache, _ = hub_cache
    before = tree_digest(cache)
    with pytest.raises(ResourceNotFoundError, match="tiny-org/config-only has no weights.*model.safetensors"):
        leanformers.AutoModel.from_pretrained("tiny-org/config-only", cache_dir=cache)
    assert tree_digest(cache) == before


# ---------------------------------------------------------------------- unsafe names in an index
def test_index_naming_a_parent_file_is_refused_in_the_cache(hub_cache):
    cache, _ = hub_cache
    before = tree_digest(cache)
    with pytest.raises(UnsafePathError, match=r"Refusing file name '\.\./x\.safetensors'"):
        leanformers.AutoModel.from_pretrained("tiny-org/escape", cache_dir=cache)
    assert tree_digest(cache) == before


@pytest.mark.parametrize("name", ["../x.safetensors", "sub/../../x.safetensors", "/etc/passwd"])
def test_index_naming_a_file_outside_is_refused_in_a_folder(tmp_path, checkpoints, name):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes((checkpoints["main"] / "config.json").read_bytes())
    (tmp_path / "x.safetensors").write_bytes((checkpoints["main"] / "model.safetensors").read_bytes())
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"pooler.dense.weight": name}}))
    with pytest.raises(UnsafePathError) as info:
        leanformers.AutoModel.from_pretrained(folder)
    assert repr(name) in str(info.value)
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ResourceNotFoundError)


# ---------------------------------------------------------------------- a mirror at HF_ENDPOINT
class MirrorHandler(BaseHTTPRequestHandler):
    """Serves /{repo}/resolve/{revision}/{filename} with the headers huggingface_hub reads."""

    protocol_version = "HTTP/1.1"
    repos: dict = {}      # repo id -> {"commit": hash, "files": {name: bytes}}
    requests: list = []

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._answer(send_body=False)

    def do_GET(self):
        self._answer(send_body=True)

    def _answer(self, send_body):
        type(self).requests.append((self.command, self.path))
        repo_id, _, rest = self.path.lstrip("/").partition("/resolve/")
        revision, _, filename = rest.partition("/")
        repo = type(self).repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound", None)
        if revision not in ("main", repo["commit"]):
            return self._error(404, "RevisionNotFound", None)
        data = repo["files"].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", repo["commit"])
        self.send_response(200)
        self.send_header("ETag", f'"{blob_name(filename, data)}"')
        self.send_header("X-Repo-Commit", repo["commit"])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def _error(self, status, code, commit):
        body = json.dumps({"error": code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)


@pytest.fixture
def mirror(checkpoints):
    files = folder_files(checkpoints["main"])
    MirrorHandler.repos = {REPO: {"commit": commit_hash(files), "files": files}}
    MirrorHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", MirrorHandler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


DOWNLOAD_SCRIPT = """
import json, sys, torch, leanformers
repo, cache, out = sys.argv[1:4]
config = leanformers.AutoConfig.from_pretrained(repo, cache_dir=cache)
model = leanformers.AutoModel.from_pretrained(repo, cache_dir=cache)
ids = torch.tensor(json.loads(sys.argv[4]))
with torch.no_grad():
    torch.save(model(input_ids=ids).last_hidden_state, out)
try:
    leanformers.AutoConfig.from_pretrained("nobody/missing-repo", cache_dir=cache)
except leanformers.errors.ResourceNotFoundError as err:
    print(json.dumps({"model_type": config.model_type, "missing": str(err)}))
"""


def test_download_from_hf_endpoint_mirror(mirror, checkpoints, tmp_path):
    url, handler = mirror
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    ids = [[2, 35, 36, 37, 3]]
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE") and "proxy" not in k.lower()}
    env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path / "home"), NO_PROXY="127.0.0.1", HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", DOWNLOAD_SCRIPT, REPO, str(cache), str(tmp_path / "out.pt"),
                           json.dumps(ids)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["model_type"] == "bert"
    assert "'nobody/missing-repo'" in report["missing"] and "not a repo on the hub" in report["missing"]

    assert ("GET", f"/{REPO}/resolve/main/model.safetensors") in handler.requests
    info = huggingface_hub.scan_cache_dir(cache)
    assert not info.warnings and [r.repo_id for r in info.repos] == [REPO]
    cached = {f.file_name for r in info.repos for rev in r.revisions for f in rev.files}
    assert {"config.json", "model.safetensors"} <= cached

    reference = transformers.AutoModel.from_pretrained(checkpoints["main"])
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids)).last_hidden_state
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), expected)
    # and the filled cache now serves offline loads (this process runs with HF_HUB_OFFLINE=1)
    offline = leanformers.AutoModel.from_pretrained(REPO, cache_dir=cache)
    with torch.no_grad():
        torch.testing.assert_close(offline(input_ids=torch.tensor(ids)).last_hidden_state, expected)
