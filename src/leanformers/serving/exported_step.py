"""The server's CPU step compiled ahead of time (`leanformers serve --compile`, `Engine(compile=True)` on CPU).

One graph runs every forward pass of the server, prompts and decoding steps alike: `rows` requests of `new` tokens
each, written at their positions in key/value buffers of any number of slots and any length, the logits of one
chosen position per row out. torch.export traces it with all these sizes symbolic and AOTInductor compiles it to a
shared library, in a child process: the compiler's own memory (about 400 MB that torch.compile keeps in the
serving process for its whole life) goes away with the child, and the server never imports it. The library's
constants are the model's own parameters and buffers, handed to it at load (no copy: the server holds one set of
weights), so the library depends on the architecture, the configuration and the dtype, not on the weights: it is
kept in the cache folder under a digest of those and of the torch version, and later servers of any checkpoint of
that shape load it at once.

Only the weights' products are left to MKL: everything between them runs as fused C++ loops without Python, which
is what a small model's step spends most of its eager time on. Grouped attention runs as two batched products over
each key head's stacked queries (layers.StepAttentionProducts), for one new token or many.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..layers import StepAttentionProducts
from .slots import StepCache

FORMAT = 1  # bumped when the traced function or the folder's layout changes


class ServingStep(nn.Module):
    """`(tokens (rows, new), starts (rows,), lasts (rows,), key_range (keys,), *keys, *values) -> (rows, vocab)`.

    Row `b`'s tokens go to positions starts[b].. of slot `b` in every layer's buffers (the first half of
    `buffers` holds the layers' keys, the second their values); each new token attends to the positions up to its
    own among the first `keys` of its slot (key_range's length; its values are not read); the logits are those of
    the row's token `lasts[b]`."""

    def __init__(self, model):
        super().__init__()
        self.base, self.head = model.base_model, model.get_output_embeddings()

    def forward(self, tokens, starts, lasts, key_range, *buffers):
        rows, new = tokens.shape
        key_len, layers = key_range.shape[0], len(buffers) // 2
        torch._check(key_len <= buffers[0].shape[2])
        torch._check(rows <= buffers[0].shape[0])
        positions = starts[:, None] + torch.arange(new, device=tokens.device)
        mask = (torch.arange(key_len, device=tokens.device)[None, None, :] <= positions[:, :, None])[:, None]
        cache = StepCache(list(buffers[:layers]), list(buffers[layers:]), positions, key_len)
        hidden = self.base(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, return_dict=True).last_hidden_state
        return self.head(hidden[torch.arange(rows, device=tokens.device), lasts])


def cache_root() -> Path:
    """Where compiled steps are kept: $LEANFORMERS_CACHE, else $XDG_CACHE_HOME/leanformers, else ~/.cache/leanformers."""
    if os.environ.get("LEANFORMERS_CACHE"):
        return Path(os.environ["LEANFORMERS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leanformers"


def step_key(model) -> str:
    """The digest a compiled step is kept under: what the traced graph depends on, weights excluded."""
    from .. import __version__

    parts = {"format": FORMAT, "class": f"{type(model).__module__}.{type(model).__qualname__}",
             "config": json.loads(model.config.to_json_string(use_diff=False)), "dtype": str(model.dtype),
             "torch": torch.__version__, "leanformers": __version__,
             "cpu": torch.backends.cpu.get_cpu_capability()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ExportedStep:
    """`model`'s ServingStep, compiled (or found compiled) and loaded with the model's own tensors as constants.

    `step(tokens, starts, lasts, key_len, keys, values) -> logits (rows, vocab)`; `buffers(rows, length)` makes the
    zeroed per-layer (keys, values) pairs a prompt is prefilled into."""

    def __init__(self, model, build_timeout: float = 3600.0):
        if not getattr(model, "_supports_compiled_decoding", False):
            raise ValueError(f"compile: {type(model).__name__} has no compiled decoding step; serve it without "
                             f"--compile.")
        self.module = ServingStep(model)
        self.folder = cache_root() / "serve-steps" / step_key(model)
        self.build_seconds = None if (self.folder / "step.so").is_file() else _build_in_child(
            model, self.folder, build_timeout)
        spec = json.loads((self.folder / "spec.json").read_text(encoding="utf-8"))
        self.layers, self.dtype = spec["layers"], model.dtype  # [(kv_heads, head_dim)] per layer
        self.runner = torch._C._aoti.AOTIModelContainerRunnerCpu(str(self.folder / "step.so"), 1)
        # user-managed constants: the library reads the model's tensors where they are, nothing is copied
        self.runner.update_constant_buffer(self._constants(), False, True, True)

    def _constants(self) -> dict:
        """The library's constant names -> the model's parameters and buffers (and the few tensors the trace
        itself made, kept beside the library)."""
        own = dict(self.module.named_parameters(remove_duplicate=False))
        own.update(self.module.named_buffers(remove_duplicate=False))
        extras = self.folder / "extras.safetensors"
        if extras.is_file():
            from safetensors.torch import load_file

            own.update(load_file(extras))
        constants = {}
        for name, fqn in self.runner.get_constant_names_to_original_fqns().items():
            if fqn not in own:
                raise RuntimeError(f"the compiled step in {self.folder} needs {fqn!r}, which the model does not "
                                   f"have; delete that folder to compile the step again.")
            constants[name] = own[fqn].detach().contiguous()
        return constants

    def __call__(self, tokens, starts, lasts, key_len: int, keys: list, values: list) -> torch.Tensor:
        key_range = torch.empty(key_len)  # only its length is read
        return self.runner.run([tokens, starts, lasts, key_range, *keys, *values])[0]

    def buffers(self, rows: int, length: int) -> list:
        return [(torch.zeros(rows, heads, length, dim, dtype=self.dtype),
                 torch.zeros(rows, heads, length, dim, dtype=self.dtype)) for heads, dim in self.layers]


def _build_in_child(model, folder: Path, timeout: float) -> float:
    """Compile `model`'s step into `folder` in a child process; the seconds it took."""
    import time

    import leanformers

    started = time.monotonic()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as work:
        spec_dir, built = Path(work) / "spec", Path(work) / "built"
        model.config.save_pretrained(spec_dir)
        (spec_dir / "spec.json").write_text(json.dumps({
            "class": f"{type(model).__module__}:{type(model).__qualname__}", "dtype": str(model.dtype)[6:]}))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(Path(leanformers.__file__).parents[1]), os.environ.get("PYTHONPATH")])))
        done = subprocess.run([sys.executable, "-m", __name__, str(spec_dir), str(built)], env=env, timeout=timeout,
                              capture_output=True, text=True)
        if done.returncode != 0 or not (built / "step.so").is_file():
            raise RuntimeError(f"compiling the serving step failed (exit {done.returncode}):\n"
                               f"{done.stderr[-3000:]}\nServe without --compile, or report this error.")
        try:
            os.replace(built, folder)
        except OSError:  # another server published the same step meanwhile
            if not (folder / "step.so").is_file():
                raise
    return time.monotonic() - started


def _build(spec_dir: Path, out: Path):
    """The child's work: the model's shape from `spec_dir`, traced, compiled and written to `out`."""
    import importlib

    from safetensors.torch import save_file

    from ..auto import AutoConfig
    from ..cache import DynamicCache

    spec = json.loads((spec_dir / "spec.json").read_text(encoding="utf-8"))
    module, name = spec["class"].split(":")
    model = getattr(importlib.import_module(module), name).from_config(
        AutoConfig.from_pretrained(spec_dir), dtype=getattr(torch, spec["dtype"])).eval()
    with torch.no_grad():  # the layers' key/value shapes, from a one-token forward
        cache = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True,
                      past_key_values=DynamicCache()).past_key_values
    layers = [(keys.shape[1], keys.shape[3]) for keys, _ in cache]
    buffers = [torch.zeros(2, heads, 8, dim, dtype=model.dtype) for heads, dim in layers] * 2
    example = (torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 2]), torch.tensor([2, 1]), torch.empty(5),
               *(buffer.clone() for buffer in buffers))
    rows, new, keys = (torch.export.Dim(n, min=1) for n in ("rows", "new", "keys"))
    slots, length = torch.export.Dim("slots", min=1), torch.export.Dim("length", min=1)
    shapes = ({0: rows, 1: new}, {0: rows}, {0: rows}, {0: keys}, tuple({0: slots, 2: length} for _ in buffers))
    step = ServingStep(model)
    with torch.no_grad(), StepAttentionProducts():
        program = torch.export.export(step, example, dynamic_shapes=shapes)
    out.mkdir(parents=True)
    package = torch._inductor.aoti_compile_and_package(
        program, package_path=str(out / "step.pt2"), inductor_configs={"aot_inductor.package_constants_in_so": False})
    with zipfile.ZipFile(package) as archive:
        library = next(n for n in archive.namelist() if n.endswith(".so"))
        with archive.open(library) as source, open(out / "step.so", "wb") as target:
            shutil.copyfileobj(source, target)
    os.remove(package)
    own = {n for n, _ in step.named_parameters(remove_duplicate=False)}
    own |= {n for n, _ in step.named_buffers(remove_duplicate=False)}
    extras = {n: t.contiguous() for n, t in program.constants.items() if n not in own and isinstance(t, torch.Tensor)}
    if extras:
        save_file(extras, str(out / "extras.safetensors"))
    (out / "spec.json").write_text(json.dumps({"layers": layers}))


if __name__ == "__main__":
    _build(Path(sys.argv[1]), Path(sys.argv[2]))
