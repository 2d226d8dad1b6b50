"""The package's floors: an import only goes down (or stays on its floor), and no two parts import each other.

generation/ stands below the models: it decodes over any model with a forward() and a cache, imports no model, and
its GenerationMixin is what gives the causal-LM and seq2seq heads their generate(). Imports inside functions count.
"""

from __future__ import annotations

import ast
import functools
import itertools
from pathlib import Path

import pytest

import leanformers

PACKAGE = Path(leanformers.__file__).parent

FLOORS = [
    {"errors", "__version__", "allocator"},
    {"hub"},
    {"configuration", "outputs", "gguf"},
    {"tokenization"},
    {"cache", "layers", "generation", "disentangled_attention", "sliding_window", "adaptive_softmax",
     "relative_attention", "chunking", "activations", "quantize", "products", "step_operators", "packed_weights"},
    {"checkpoint", "tf_checkpoint", "resizing", "loading", "modeling"},
    {"models", "heads"},
    {"auto", "encoder_decoder"},
    {"export"},
    {"pipelines", "training"},
    {"cli", "serving"},
]
FLOOR_OF = {part: level for level, parts in enumerate(FLOORS) for part in parts}


def part_of(dotted: str) -> str:
    """"leanformers.models.bert" -> "models"; "leanformers.__version__" -> "__version__"."""
    return dotted.split(".")[1]


def imported_modules(path: Path) -> set[str]:
    """Every leanformers module (dotted) that `path` imports, at any depth of its code."""
    module = ".".join(("leanformers", *path.relative_to(PACKAGE).with_suffix("").parts))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            if target == "leanformers":
                found.update(f"leanformers.{alias.name}" for alias in node.names)
            elif target and target.startswith("leanformers."):
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("leanformers."))
    return found


@functools.cache
def part_imports() -> dict[str, set[str]]:
    """part -> the other parts it imports (the lazy public facade, leanformers/__init__.py, is left out)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":
            continue
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        targets = {part_of(target) for target in imported_modules(path)} - {part, "__init__"}
        edges.setdefault(part, set()).update(targets)
    return edges


def test_every_part_has_a_floor():
    assert set(part_imports()) - set(FLOOR_OF) == set()


@pytest.mark.parametrize("part", sorted(part_imports()))
def test_imports_only_go_down(part):
    upward = {target for target in part_imports()[part] if FLOOR_OF.get(target, 99) > FLOOR_OF[part]}
    assert upward == set(), f"{part} imports {sorted(upward)} from a higher floor"


def test_no_two_parts_import_each_other():
    edges = part_imports()
    cycles = [(a, b) for a, b in itertools.combinations(sorted(edges), 2) if b in edges[a] and a in edges.get(b, ())]
    assert cycles == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("leanformers", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def test_no_two_modules_import_each_other():
    """Also inside a part (a folder): two modules that import each other share a piece that belongs lower."""
    edges = {_module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}
    cycles = [(a, b) for a, b in itertools.combinations(sorted(edges), 2)
              if b in edges[a] and a in edges[b] and not (a == "leanformers" or b == "leanformers")]
    assert cycles == []
