"""Compiling serving/exported_step.py's library, in a child process (`python -m leanformers.serving.exported_build
SPEC OUT`): the compiler's memory leaves with the child, and the server never imports it.

The child builds the model from its configuration (random weights: the library reads the served model's own at
load) and traces ServingStep with every size symbolic. For float32 models it first compiles the step's own weight
products (serving/row_products.py) into the folder and replaces every linear layer by one over its weight packed
for them, so the library calls them directly; the folder's recipe says which model weight each packed constant is
made from, and the server packs its own weights that way at load. Other dtypes keep torch's products, the
library's constants then the model's tensors as they are. Either way the child checks that the library, given
constants made from the model, computes the model's logits.
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
from .row_products import C_SHIMS, compile_products, load_products, pack, use_row_products
from .slots import ServingStep


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
    with torch.no_grad():  # the layers' key/value shapes, from a one-token forward
        cache = model(input_ids=torch.zeros(1, 1, dtype=torch.long), use_cache=True,
                      past_key_values=DynamicCache()).past_key_values
    layers = [(keys.shape[1], keys.shape[3]) for keys, _ in cache]
    step = ServingStep(model)
    own, example = own_tensors(step), _example(layers, model.dtype)
    with torch.no_grad():
        expected = step(*_copies(example))
    out.mkdir(parents=True)
    block = _products_block(out / "products.so") if model.dtype == torch.float32 else None
    recipe = use_row_products(step, block) if block else {}
    _compile(_export(step, example), out, shims=C_SHIMS if block else {})
    runner = torch._C._aoti.AOTIModelContainerRunnerCpu(str(out / "step.so"), 1)
    runner.update_constant_buffer(made_constants(runner, own, recipe, block), False, True, True)
    if not _close(runner.run(_copies(example))[0], expected):
        raise RuntimeError("the compiled step's logits differ from the model's")
    (out / "spec.json").write_text(json.dumps({"layers": layers, "recipe": recipe, "products": bool(block)}))


def _products_block(out: Path) -> int | None:
    """row_products.cpp compiled to `out` and loaded: its column block; None (and a note) where it cannot be."""
    try:
        compile_products(out)
        return load_products(out)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"the step's own weight products could not be built ({error}); the library uses torch's",
              file=sys.stderr)
        return None


def _close(got, expected) -> bool:
    """Within float32 rounding for a float32 model; otherwise within a few roundings of the largest logit (half
    precision rounds differently where the library fuses what the model does op by op)."""
    if expected.dtype == torch.float32:
        return torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    tolerance = 16 * torch.finfo(expected.dtype).eps * expected.abs().max().item()
    return torch.allclose(got.float(), expected.float(), atol=tolerance, rtol=0)


def _model_of(spec_dir: Path):
    from ..auto import AutoConfig

    spec = json.loads((spec_dir / "spec.json").read_text(encoding="utf-8"))
    module, name = spec["class"].split(":")
    return getattr(importlib.import_module(module), name).from_config(
        AutoConfig.from_pretrained(spec_dir), dtype=getattr(torch, spec["dtype"])).eval()


def _example(layers: list, dtype) -> tuple:
    """Inputs of a ServingStep call: two rows of four new tokens in buffers of two slots."""
    buffers = [torch.zeros(2, heads, 8, dim, dtype=dtype) for heads, dim in layers] * 2
    return (torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]]), torch.tensor([0, 2]), torch.tensor([3, 1]),
            torch.empty(6), *buffers)


def _copies(example: tuple) -> list:
    return [tensor.clone() for tensor in example]


def _export(step, example: tuple):
    """ServingStep traced with every size symbolic."""
    from ..layers import StepAttentionProducts

    rows, new, keys = (torch.export.Dim(n, min=1) for n in ("rows", "new", "keys"))
    slots, length = torch.export.Dim("slots", min=1), torch.export.Dim("length", min=1)
    buffers = tuple({0: slots, 2: length} for _ in example[4:])
    shapes = ({0: rows, 1: new}, {0: rows}, {0: rows}, {0: keys}, buffers)
    with torch.no_grad(), StepAttentionProducts():
        return torch.export.export(step, tuple(_copies(example)), dynamic_shapes=shapes)


def _compile(program, out: Path, shims: dict):
    """AOTInductor: `out`/step.so, calling the C functions `shims` declares for their operators directly."""
    settings = {"aot_inductor.package_constants_in_so": False, "aot_inductor.custom_ops_to_c_shims": shims}
    with torch.no_grad():
        package = torch._inductor.aoti_compile_and_package(program, package_path=str(out / "step.pt2"),
                                                           inductor_configs=settings)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(out / "package")
    os.remove(package)
    os.replace(glob.glob(str(out / "package" / "**" / "*.so"), recursive=True)[0], out / "step.so")
    shutil.rmtree(out / "package")


def own_tensors(module) -> dict:
    """Every parameter and buffer of `module` by name, tied ones under each of their names."""
    return {**dict(module.named_parameters(remove_duplicate=False)),
            **dict(module.named_buffers(remove_duplicate=False))}


def made_constants(runner, own: dict, recipe: dict, block: int | None, release=None) -> dict:
    """The library's constant names -> the model's tensors, or a weight packed for its products (`recipe`, `block`:
    serving/row_products.py). With `release` (the module `own` names come from), each model weight the library
    reads only packed is taken from the module once packed, its file pages given back: one weight at a time, so
    the two forms never add up."""
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
        source, transposed = recipe[fqn]["weight"], recipe[fqn]["transposed"]
        weight = own[source].detach()
        constants[name] = pack(weight.t() if transposed else weight, block)
        if release is not None and id(own[source]) not in read_as_is:
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
