"""Compiling serving/exported_step.py's library, in a child process (`python -m leanformers.serving.exported_build
SPEC OUT`): the compiler's memory leaves with the child, and the server never imports it.

The child builds the model from its configuration (random weights, each tensor made distinct: the library reads the
served model's own at load), traces ServingStep with every size symbolic, and compiles it twice if need be. First
with frozen weights, so that inductor joins the products of one input (q, k and v; gate and up) into one product
over the weights stacked, and moves each product to oneDNN with its weight packed for it (PACK_ROWS rows hint the
packing). The packed and stacked weights are new tensors inside the library, so the child works out which model
tensors each one is made of (probe products against every weight of its width; equal rows for a stacked bias) and
checks that a library given constants made that way by the server computes what the compiled one does. The folder
then holds the library and that recipe, not the weights. Where a constant cannot be traced back to the model's
tensors, the library is compiled again without frozen weights, its constants the model's tensors as they are.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from ..allocator import drop_file_pages
from .slots import ServingStep

PACK_ROWS = 8  # the row count oneDNN's packing of the weights is chosen for: a decoding step of 8 requests


def build_in_child(model, folder: Path, timeout: float) -> float:
    """Compile `model`'s step into `folder` in a child process; the seconds it took."""
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


def build(spec_dir: Path, out: Path):
    """The child's work: the model's shape from `spec_dir`, traced, compiled and written to `out`."""
    from ..cache import DynamicCache

    model = _model_of(spec_dir)
    _make_distinct(model)
    with torch.no_grad():  # the layers' key/value shapes, from a one-token forward
        cache = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True,
                      past_key_values=DynamicCache()).past_key_values
    layers = [(keys.shape[1], keys.shape[3]) for keys, _ in cache]
    step = ServingStep(model)
    program, example = _export(step, layers, model.dtype)
    out.mkdir(parents=True)
    _compile(program, out, frozen=True)
    recipe = _constants_recipe(step, out, example)
    (out / "constants").unlink()
    if recipe is None:
        _compile(program, out, frozen=False)
    (out / "spec.json").write_text(json.dumps({"layers": layers, "recipe": recipe, "pack_rows": PACK_ROWS}))


def _model_of(spec_dir: Path):
    from ..auto import AutoConfig

    spec = json.loads((spec_dir / "spec.json").read_text(encoding="utf-8"))
    module, name = spec["class"].split(":")
    return getattr(importlib.import_module(module), name).from_config(
        AutoConfig.from_pretrained(spec_dir), dtype=getattr(torch, spec["dtype"])).eval()


def _make_distinct(model):
    """Add a little noise to every parameter, so that no two tensors are equal (a fresh model's biases are all zeros,
    its norms all ones) and each constant of the library is traced back to one of them."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.is_floating_point():
                noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
                parameter.add_(noise.to(parameter.dtype) * 0.02)


def _export(step, layers: list, dtype):
    """ServingStep traced with every size symbolic; an example of its inputs (PACK_ROWS new tokens in all)."""
    from ..layers import StepAttentionProducts

    buffers = [torch.zeros(2, heads, 8, dim, dtype=dtype) for heads, dim in layers] * 2
    example = (torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]]), torch.tensor([0, 2]), torch.tensor([3, 1]),
               torch.empty(6), *(buffer.clone() for buffer in buffers))
    rows, new, keys = (torch.export.Dim(n, min=1) for n in ("rows", "new", "keys"))
    slots, length = torch.export.Dim("slots", min=1), torch.export.Dim("length", min=1)
    shapes = ({0: rows, 1: new}, {0: rows}, {0: rows}, {0: keys}, tuple({0: slots, 2: length} for _ in buffers))
    with torch.no_grad(), StepAttentionProducts():
        return torch.export.export(step, example, dynamic_shapes=shapes), example


def _compile(program, out: Path, frozen: bool):
    """AOTInductor: `out`/step.so, and with frozen weights the constants it was compiled with (`out`/constants)."""
    settings = {"freezing": frozen, "aot_inductor.package_constants_in_so": False}
    if frozen:  # products of one input joined into one (their weights stacked); constants written out to be traced
        settings.update({"cpp.enable_concat_linear": True,
                         "aot_inductor.package_constants_on_disk_format": "binary_blob"})
    with torch.no_grad():  # inductor freezes weights only where no gradient is recorded
        package = torch._inductor.aoti_compile_and_package(program, package_path=str(out / "step.pt2"),
                                                           inductor_configs=settings)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(out / "package")
    os.remove(package)
    for suffix, name in ((".so", "step.so"), (".blob", "constants")):
        found = glob.glob(str(out / "package" / "**" / f"*{suffix}"), recursive=True)
        if found:
            os.replace(found[0], out / name)
    shutil.rmtree(out / "package")


def _constants_recipe(step, out: Path, example) -> dict | None:
    """{constant: {"pack": bool, "parts": [[model tensor, transposed], ...]}} for each constant of the frozen library
    in `out` that is not a model tensor as it is: the tensors stacked along the first dimension, packed for oneDNN
    or not. Checked by running the library with constants made that way; None when some constant is not made of
    model tensors."""
    compiled = torch._C._aoti.AOTIModelContainerRunnerCpu(str(out / "step.so"), 1)
    compiled.update_constant_buffer_from_blob(str(out / "constants"))
    own = own_tensors(step)
    recipe = {}
    for name, constant in compiled.extract_constants_map(False).items():
        if name in own and constant.layout == torch.strided:
            continue
        pack = constant.layout != torch.strided
        parts = _packed_parts(constant, own) if pack else _stacked_parts(constant, own)
        if parts is None:
            return None
        recipe[name] = {"pack": pack, "parts": parts}
    rebuilt = torch._C._aoti.AOTIModelContainerRunnerCpu(str(out / "step.so"), 1)
    rebuilt.update_constant_buffer(made_constants(rebuilt, own, recipe, PACK_ROWS), False, True, True)
    inputs = [tensor.clone() for tensor in example]
    expected = compiled.run([tensor.clone() for tensor in example])[0]
    return recipe if torch.allclose(rebuilt.run(inputs)[0], expected, atol=1e-5, rtol=1e-5) else None


def _packed_parts(constant, own: dict) -> list | None:
    """The model weights (each maybe transposed: GPT-2's Conv1D) whose rows, one after another, the packed `constant`
    holds, found by a probe product: its columns match each weight's own product in turn."""
    probe = torch.randn(PACK_ROWS, constant.shape[1], dtype=constant.dtype)
    product = torch.ops.mkldnn._linear_pointwise(probe, constant, None, "none", [], "")
    candidates = [(name, transposed, tensor.t() if transposed else tensor)
                  for name, tensor in own.items() if tensor.dim() == 2 for transposed in (False, True)]
    candidates = [(name, transposed, weight) for name, transposed, weight in candidates
                  if weight.shape[1] == constant.shape[1] and 0 < len(weight) <= len(constant)]
    products = [probe @ weight.t() for _, _, weight in candidates]

    def matches(row):
        return [(name, transposed, len(weight)) for (name, transposed, weight), part in zip(candidates, products)
                if row + len(weight) <= len(constant) and torch.allclose(part, product[:, row:row + len(weight)],
                                                                         atol=1e-4)]
    return _in_turn(constant.shape[0], matches, own)


def _stacked_parts(constant, own: dict) -> list | None:
    """The model tensors whose rows, one after another, make up the plain `constant` (a stacked bias), equal in
    value."""
    if constant.dim() == 0:
        return None
    candidates = [(name, tensor) for name, tensor in own.items()
                  if tensor.dim() == constant.dim() and tensor.shape[1:] == constant.shape[1:] and len(tensor)]

    def matches(row):
        return [(name, False, len(tensor)) for name, tensor in candidates
                if torch.equal(constant[row:row + len(tensor)], tensor)]
    return _in_turn(len(constant), matches, own)


def _in_turn(rows: int, matches, own: dict) -> list | None:
    """[[name, transposed], ...] covering `rows` rows, `matches(row)` giving the candidates that start at `row`;
    None where no tensor or more than one (tied names are one tensor) does."""
    parts, row = [], 0
    while row < rows:
        found = {}
        for name, transposed, length in matches(row):
            found.setdefault(id(own[name]), (name, transposed, length))
        if len(found) != 1:
            return None
        name, transposed, length = found.popitem()[1]
        parts.append([name, transposed])
        row += length
    return parts


def own_tensors(module) -> dict:
    """Every parameter and buffer of `module` by name, tied ones under each of their names."""
    return {**dict(module.named_parameters(remove_duplicate=False)),
            **dict(module.named_buffers(remove_duplicate=False))}


def made_constants(runner, own: dict, recipe: dict, rows: int, release=None) -> dict:
    """The library's constant names -> the model's tensors, or a constant made of them (`recipe`: stacked, packed
    for oneDNN). With `release` (the module `own` names come from), each model tensor the library reads only through
    such constants is taken from the module once they are made, its file pages given back: one constant at a time,
    so the two forms never add up."""
    names = runner.get_constant_names_to_original_fqns()
    missing = [fqn for fqn in names.values() if fqn not in recipe and fqn not in own]
    if missing:
        raise RuntimeError(f"the compiled serving step needs {missing[0]!r}, which the model does not have; delete "
                           f"its folder in the cache to compile it again.")
    read_as_is = {id(own[fqn]) for fqn in names.values() if fqn not in recipe}
    constants = {}
    for name, fqn in names.items():
        if fqn not in recipe:
            constants[name] = own[fqn].detach().contiguous()
            continue
        parts = recipe[fqn]["parts"]
        tensors = [own[source].detach().t() if transposed else own[source].detach() for source, transposed in parts]
        made = torch.cat(tensors) if len(tensors) > 1 else tensors[0].contiguous()
        constants[name] = torch.ops.mkldnn._reorder_linear_weight(made, rows) if recipe[fqn]["pack"] else made
        released = [source for source, _ in parts if release is not None and id(own[source]) not in read_as_is]
        for source in released:
            _release(release, source)
    return constants


def _release(root, name: str):
    """Replace the weight `name` of `root` by an empty one and give back the file pages it was read from."""
    owner, _, attribute = name.rpartition(".")
    module = root.get_submodule(owner)
    weight = getattr(module, attribute)
    if weight.numel():
        drop_file_pages(weight)
        setattr(module, attribute, torch.nn.Parameter(weight.new_empty(0), requires_grad=False))


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
