"""The `leanformers` command: run a pipeline on texts, download checkpoints, report the environment.

    leanformers run fill-mask --model PATH "Paris is the [MASK] of France."
    cat texts.txt | leanformers run text-classification --model PATH --batch-size 64 > out.jsonl
    leanformers download gpt2 config.json model.safetensors --local-dir ./models/gpt2
    leanformers env
    leanformers export onnx PATH ./onnx-model --task text-classification

Exit status: 0 on success, 1 when the work fails (the reason is printed on stderr), 2 for a malformed command line,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

_DEBUG_ENV = "LEANFORMERS_DEBUG"  # set to 1 to see full tracebacks instead of one-line errors


# ---------------------------------------------------------------------- parsing
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leanformers", description="leanformers command line.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"leanformers {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_run(commands)
    _add_download(commands)
    _add_env(commands)
    _add_serve(commands)
    _add_export(commands)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _add_run(commands):
    run = commands.add_parser(
        "run", help="run a pipeline task on texts and print one JSON line per input",
        description="Run a pipeline on INPUTs given as arguments, or on standard input (one text per line, or JSON "
                    "lines: a JSON string, or an object such as {\"question\": ..., \"context\": ...} or "
                    "{\"text\": ..., \"text_pair\": ...}). Prints one JSON line per input, in order.")
    run.add_argument("task", help="task name, e.g. text-classification, ner, fill-mask, question-answering, "
                                  "summarization, translation_en_to_fr, text-generation, zero-shot-classification")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="texts (default: read standard input)")
    run.add_argument("--model", help="hub repo id or local folder (default: the task's default checkpoint)")
    run.add_argument("--tokenizer", help="tokenizer repo id or folder (default: the model's)")
    run.add_argument("--revision", help="branch, tag or commit of the model repo")
    run.add_argument("--device", help="cpu, cuda, cuda:1, mps, or a device index (-1 for cpu)")
    run.add_argument("--dtype", help="float32, float16, bfloat16 or auto")
    run.add_argument("--batch-size", type=int, default=None, help="inputs per model call (sorted by length)")
    run.add_argument("--top-k", type=int, default=None, help="how many labels, tokens or answers to return")
    run.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"],
                     help="token-classification: how tokens are grouped into entities")
    run.add_argument("--candidate-labels", help="zero-shot-classification: comma-separated labels")
    run.add_argument("--multi-label", action="store_true", help="zero-shot-classification: score labels apart")
    run.add_argument("--hypothesis-template", help="zero-shot-classification: e.g. 'This text is about {}.'")
    run.add_argument("--context", help="question-answering: the context for every question given as INPUT")
    run.add_argument("--max-new-tokens", type=int, default=None, help="generation: tokens to generate")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="any other pipeline keyword; VALUE is read as JSON when it parses (repeatable)")
    run.add_argument("--input-format", choices=["auto", "text", "jsonl"], default="auto",
                     help="how standard input lines are read (auto: JSON when a line parses as JSON)")
    run.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    run.set_defaults(handler=command_run)


def _add_download(commands):
    download = commands.add_parser(
        "download", help="download files of a hub repo into the cache or a folder",
        description="Download a whole repo, some FILES, or the files matching --include/--exclude globs. Prints the "
                    "local path (the file for one FILE, else the folder). Honours HF_ENDPOINT, HF_HOME, "
                    "HF_HUB_CACHE and HF_TOKEN; an interrupted download resumes where it stopped.")
    download.add_argument("repo_id", help="repo id, e.g. openai-community/gpt2")
    download.add_argument("filenames", nargs="*", metavar="FILE", help="files to download (default: all)")
    download.add_argument("--include", nargs="+", metavar="GLOB", help="only files matching these globs")
    download.add_argument("--exclude", nargs="+", metavar="GLOB", help="skip files matching these globs")
    download.add_argument("--revision", help="branch, tag or commit (default: main)")
    download.add_argument("--repo-type", choices=["model", "dataset", "space"], default="model")
    download.add_argument("--cache-dir", help="cache folder (default: HF_HUB_CACHE, or HF_HOME/hub)")
    download.add_argument("--local-dir", help="write plain files into this folder instead of the cache")
    download.add_argument("--token", help="access token for private or gated repos (default: HF_TOKEN)")
    download.add_argument("--force-download", action="store_true", help="download again even when cached")
    download.add_argument("--max-workers", type=int, default=8, help="parallel file downloads")
    download.add_argument("--quiet", action="store_true", help="no progress bars; print only the path")
    download.set_defaults(handler=command_download)


def _add_env(commands):
    env = commands.add_parser("env", help="versions, devices and cache paths",
                              description="Print the versions of leanformers and its dependencies, the devices "
                                          "torch sees, and where the hub cache is.")
    env.add_argument("--json", action="store_true", help="print one JSON object")
    env.set_defaults(handler=command_env)


def _add_serve(commands):
    serve = commands.add_parser(
        "serve", help="serve a model over an OpenAI-compatible HTTP API, with a web page",
        description="Serve MODEL (a folder, hub id or cached repo; default: the embedded SmolLM2-135M-Instruct GGUF) "
                    "with continuous batching: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models, "
                    "/v1/pipeline/TASK, /health, /metrics, and a chat/pipeline page at /. Needs the `serve` extra.")
    serve.add_argument("model", nargs="?", help="model folder, hub repo id or cached repo")
    serve.add_argument("--gguf-file", help="GGUF file inside MODEL's folder or repo")
    serve.add_argument("--task", help="serve this pipeline task (default: what the checkpoint's head does)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--max-batch", type=int, default=8, help="requests decoded together = key/value slots")
    serve.add_argument("--max-queue", type=int, default=64, help="requests that may wait; more get 429")
    serve.add_argument("--max-model-len", type=int, default=None,
                       help="tokens per slot, prompt plus completion (default: 2048, at most the model's context)")
    serve.add_argument("--api-key", default=os.environ.get("LEANFORMERS_API_KEY"),
                       help="require 'Authorization: Bearer KEY' (default: LEANFORMERS_API_KEY)")
    serve.add_argument("--cors-origin", help="allow browser calls from this origin")
    serve.add_argument("--device", default="cpu", help="cpu or cuda")
    serve.add_argument("--dtype", help="float32, float16, bfloat16 or auto")
    serve.add_argument("--prefill-chunk", type=int, default=128,
                       help="prompt tokens prefilled between two decoding steps, a multiple of 64 (default: 128)")
    serve.add_argument("--batch-invariant", action="store_true",
                       help="greedy answers bitwise independent of the other requests in the batch (CPU float32; "
                            "slower, most of all for a single stream)")
    serve.add_argument("--compile", action="store_true",
                       help="run prompts and decoding steps through one library compiled ahead of time (CPU: "
                            "compiled once per model shape, a minute or two, and kept in ~/.cache/leanformers; the "
                            "weights packed for the library's own products at start, held once; CUDA: CUDA graphs)")
    serve.add_argument("--prefix-cache", type=int, default=0, metavar="TOKENS",
                       help="keep the keys and values of up to TOKENS prompt tokens for later prompts that begin "
                            "the same way, e.g. the chat template's system turn (default: 0, off)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(handler=command_serve)


def _add_export(commands):
    export = commands.add_parser("export", help="export a model to another runtime (ONNX)",
                                 description="Export a checkpoint for another runtime.")
    formats = export.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True
    onnx = formats.add_parser(
        "onnx", help="write model.onnx, the config and the tokenizer, checked in ONNX Runtime",
        description="Export MODEL for --task into OUTDIR (model.onnx, config.json, the tokenizer), run it in ONNX "
                    "Runtime against PyTorch and print the largest difference; fails above --atol. "
                    "`pipeline(TASK, model=OUTDIR)` then runs on ONNX Runtime. Needs the `onnx` extra.")
    onnx.add_argument("model", help="model folder, hub repo id or cached repo")
    onnx.add_argument("output", metavar="OUTDIR", help="folder to write")
    onnx.add_argument("--task", default="feature-extraction", help="feature-extraction (default), fill-mask, "
                      "text-classification, token-classification, question-answering, text-generation or "
                      "text2text-generation")
    onnx.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    onnx.add_argument("--atol", type=float, default=1e-4, help="largest difference accepted (default: 1e-4)")
    onnx.set_defaults(handler=command_export_onnx)


def command_export_onnx(args) -> int:
    from .export import export_onnx

    difference = export_onnx(args.model, args.output, task=args.task, opset=args.opset, atol=args.atol)
    print(f"{args.output}: ONNX Runtime matches PyTorch (max difference {difference:.2e} <= {args.atol:g})")
    return 0


def command_serve(args) -> int:
    from .serving import serve

    return serve(args.model, gguf_file=args.gguf_file, task=args.task, host=args.host, port=args.port,
                 max_batch=args.max_batch, max_queue=args.max_queue, max_len=args.max_model_len,
                 api_key=args.api_key, cors_origin=args.cors_origin, device=args.device, dtype=args.dtype,
                 batch_invariant=args.batch_invariant, log_level=args.log_level, prefill_chunk=args.prefill_chunk,
                 compile=args.compile, prefix_cache=args.prefix_cache)


# ---------------------------------------------------------------------- run
def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def pipeline_kwargs(args) -> dict:
    """Call keywords of the pipeline from the command line options."""
    kwargs = {}
    for name in ("top_k", "aggregation_strategy", "candidate_labels", "hypothesis_template", "max_new_tokens"):
        value = getattr(args, name)
        if value is not None:
            kwargs[name] = value
    if args.multi_label:
        kwargs["multi_label"] = True
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE, got {item!r}.")
        kwargs[key.strip().replace("-", "_")] = _parse_value(value)
    return kwargs


class UsageError(Exception):
    """A command line that parses but cannot be run as given."""


def _device(value):
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _read_line(line: str, input_format: str):
    text = line.rstrip("\r\n")
    if input_format == "text":
        return text
    if input_format == "jsonl" or text.lstrip()[:1] in ("{", "[", '"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if input_format == "jsonl":
                raise UsageError(f"Not a JSON line: {text[:80]!r}") from None
    return text


def _inputs(args):
    """A lazy stream of inputs: the INPUT arguments, else the lines of standard input."""
    if args.inputs:
        source = iter(args.inputs)
    else:
        if sys.stdin.isatty():
            print("Reading inputs from standard input, one per line (Ctrl-D to end)...", file=sys.stderr)
        source = (_read_line(line, args.input_format) for line in _stdin_lines() if line.strip())
    if args.context is not None:
        return ({"question": item, "context": args.context} if isinstance(item, str) else item for item in source)
    return source


def _stdin_lines():
    """The lines of standard input, read by a helper thread while this one waits in short slices: Ctrl-C may be
    delivered to any thread (torch and the tokenizers start their own), and a thread blocked in a read would only
    act on it after the next line."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue(maxsize=64)

    def read():
        for line in sys.stdin:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True, name="stdin-reader").start()
    while True:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            return
        yield line


def command_run(args) -> int:
    from .pipelines import pipeline
    from .pipelines.base import jsonable

    kwargs = pipeline_kwargs(args)
    pipe = pipeline(args.task, model=args.model, tokenizer=args.tokenizer, revision=args.revision,
                    device=_device(args.device), dtype=args.dtype, batch_size=args.batch_size,
                    progress_bar=args.progress)
    for result in pipe((item for item in _inputs(args)), **kwargs):
        sys.stdout.write(json.dumps(jsonable(result), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------- download
def download(repo_id: str, filenames=(), include=None, exclude=None, revision=None, repo_type="model",
             cache_dir=None, local_dir=None, token=None, force_download=False, max_workers=8) -> str:
    """Download through huggingface_hub (cache layout, resume, HF_ENDPOINT) -> local path of the file or folder."""
    import huggingface_hub

    from .hub import hub_cache_dir

    common = dict(repo_type=repo_type, revision=revision, cache_dir=cache_dir or hub_cache_dir(),
                  local_dir=local_dir, token=token, force_download=force_download,
                  endpoint=os.environ.get("HF_ENDPOINT") or None, library_name="leanformers")
    if len(filenames) == 1 and not include and not exclude:
        return huggingface_hub.hf_hub_download(repo_id, filenames[0], **common)
    patterns = list(filenames) or include
    return huggingface_hub.snapshot_download(repo_id, allow_patterns=patterns, ignore_patterns=exclude,
                                             max_workers=max_workers, **common)


def command_download(args) -> int:
    if args.filenames and args.include:
        raise UsageError("Give FILE names or --include globs, not both.")
    if args.quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    path = download(args.repo_id, args.filenames, args.include, args.exclude, args.revision, args.repo_type,
                    args.cache_dir, args.local_dir, args.token, args.force_download, args.max_workers)
    print(path)
    return 0


def _hub_error_message(err) -> str | None:
    """A one-line reason for huggingface_hub's errors (None for other exceptions)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    if isinstance(err, errors.RevisionNotFoundError):
        return f"revision not found: {err}".splitlines()[0]
    if isinstance(err, errors.RepositoryNotFoundError):
        return ("repository not found (or private: pass --token): " + str(err).splitlines()[0])
    if isinstance(err, (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError)):
        return "file not found in the repository: " + str(err).splitlines()[0]
    if isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return ("cannot reach the hub and the files are not cached (is HF_HUB_OFFLINE set, or HF_ENDPOINT "
                "unreachable?): " + str(err).splitlines()[0])
    if isinstance(err, errors.HfHubHTTPError):
        return "the hub answered with an error: " + str(err).splitlines()[0]
    return None


# ---------------------------------------------------------------------- env
def environment() -> dict:
    """Versions, devices and cache locations, as a dict."""
    import platform
    from importlib import metadata

    from .hub import hub_cache_dir, is_offline

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    info = {"leanformers": _version(), "python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "tokenizers", "safetensors", "huggingface_hub", "numpy", "sentencepiece",
                    "datasets", "transformers"):
        info[package] = version(package)
    info["devices"] = _devices()
    info["hub_cache"] = hub_cache_dir()
    info["hf_home"] = os.environ.get("HF_HOME")
    info["hf_endpoint"] = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    info["offline"] = is_offline()
    return info


def _devices() -> dict:
    import torch

    devices = {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if devices["cuda"]:
        devices["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        devices["cuda_version"] = torch.version.cuda
    mps = getattr(torch.backends, "mps", None)
    devices["mps"] = bool(mps is not None and mps.is_available())
    return devices


def command_env(args) -> int:
    info = environment()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        print(f"{key + ':':<17} {value if value is not None else 'not installed'}")
    return 0


# ---------------------------------------------------------------------- entry point
def parse(argv=None):
    """Parsed arguments; `run` also takes INPUTs after its options (argparse alone would stop at the first)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        options = [item for item in extra if item.startswith("-")]
        if args.command != "run" or options:
            parser.error(f"unrecognized arguments: {' '.join(options or extra)}")
        args.inputs = [*args.inputs, *extra]
    return args


def main(argv=None) -> int:
    args = parse(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("leanformers: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `head`) went away: stop quietly
        sys.stderr.close()
        return 0
    except UsageError as err:
        print(f"leanformers {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - the command line reports every failure as one line
        if os.environ.get(_DEBUG_ENV):
            raise
        message = _hub_error_message(err) or f"{type(err).__name__}: {err}"
        print(f"leanformers {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
