"""A local stand-in for the hub on 127.0.0.1: the URL layout and headers huggingface_hub reads, for download tests.

Serves repo info (/api/models/{repo}/revision/{rev}), file listings (/api/models/{repo}/tree/{rev}) and files
(/{repo}/resolve/{rev}/{path}, HEAD and GET, with byte ranges). A file can be set to break off mid-transfer, to show
that downloads resume.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf")


def blob_id(name: str, data: bytes) -> str:
    """sha256 for large (LFS) files, the git blob sha1 otherwise: what the hub sends as ETag."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.commit = hashlib.sha1(json.dumps({n: blob_id(n, d) for n, d in sorted(files.items())}).encode()
                                   ).hexdigest()


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-hub"

    def log_message(self, *args):
        pass

    @property
    def hub(self) -> "LocalHub":
        return self.server.hub

    def do_HEAD(self):
        self._route(body=False)

    def do_GET(self):
        self._route(body=True)

    def _route(self, body: bool):
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append((self.command, path, self.headers.get("Range")))
        api = re.match(r"^/api/(models|datasets|spaces)/(.+?)/(revision|tree)/([^/]+)(/.*)?$", path)
        if api:
            return self._api(api.group(2), api.group(3), api.group(4))
        resolve = re.match(r"^/(?:(datasets|spaces)/)?(.+?)/resolve/([^/]+)/(.+)$", path)
        if resolve:
            return self._file(resolve.group(2), resolve.group(3), resolve.group(4), body)
        self._send_json(404, {"error": "not found"}, "EntryNotFound")

    def _repo(self, repo_id: str, revision: str):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._send_json(401, {"error": "Repository not found"}, "RepoNotFound")
            return None
        if revision not in ("main", repo.commit):
            self._send_json(404, {"error": "Invalid rev id"}, "RevisionNotFound")
            return None
        return repo

    def _api(self, repo_id, kind, revision):
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        if kind == "revision":
            siblings = [{"rfilename": name} for name in sorted(repo.files)]
            return self._send_json(200, {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                                         "siblings": siblings}, commit=repo.commit)
        entries = []
        for name, data in sorted(repo.files.items()):
            entry = {"type": "file", "path": name, "size": len(data),
                     "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": blob_id(name, data), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        self._send_json(200, entries, commit=repo.commit)

    def _file(self, repo_id, revision, name, body):
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        data = repo.files.get(name)
        if data is None:
            return self._send_json(404, {"error": "Entry not found"}, "EntryNotFound", repo.commit)
        start = 0
        match = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
        part = data[start:]
        self.send_response(206 if match else 200)
        self.send_header("ETag", f'"{blob_id(name, data)}"')
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(part)))
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not body:
            return
        breaks = self.hub.breaks.get(name)
        if breaks and breaks["times"] > 0:
            breaks["times"] -= 1
            self.wfile.write(part[:breaks["after"]])
            self.wfile.flush()
            if breaks["stall"]:  # keep the client waiting (until released) as a dead connection would
                self.hub.release.wait(timeout=120)
            self.close_connection = True  # the rest never comes: the client sees a body cut short
            return
        self.wfile.write(part)

    def _send_json(self, status, payload, error_code=None, commit=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        if error_code:
            self.send_header("X-Error-Code", error_code)
            self.send_header("X-Error-Message", str(payload.get("error", "")) if isinstance(payload, dict) else "")
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class LocalHub:
    """Repos served over HTTP; `requests` records (method, path, Range header) of every request."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list = []
        self.breaks: dict = {}
        self.release = threading.Event()
        self.url = ""

    def add(self, repo_id: str, files: dict[str, bytes]) -> Repo:
        self.repos[repo_id] = Repo(files)
        return self.repos[repo_id]

    def break_transfer(self, name: str, after: int, times: int = 1, stall: bool = False):
        """The next `times` GETs of file `name` stop after `after` bytes; with stall, the connection then hangs
        until `release` is set, like a transfer whose network went away."""
        self.breaks[name] = {"after": after, "times": times, "stall": stall}


@contextmanager
def local_hub():
    """A running LocalHub on a free port of 127.0.0.1 (stopped on exit)."""
    hub = LocalHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    server.hub = hub
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
