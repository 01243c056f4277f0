"""The house rules of STYLE.md, enforced on the package's own source.

- Imports flow one way: a module imports only modules of its own layer or below, and only at
  module top level (a function-local import to dodge a cycle means the layering is wrong).
- Operations live in one place, ``matcalc.ops``, below every engine that reads it (the
  registry's own completeness is tests/test_registry.py's concern).
- No eval on user text: no eval / sympify / parse_expr on strings; the only exec runs matcalc's
  own generated code.
- Every public name has a one-line summary.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import matcalc

PACKAGE = Path(matcalc.__file__).parent

#: Layers, lowest first. A module may import modules of its own layer or any lower one.
LAYERS = [
    ["errors", "version"],
    ["dims"],
    ["constants"],         # exact numbers in one canonical form
    ["expr"],              # nodes: leaves and the algebra of Python's operators
    ["notation"],          # index notation's vocabulary (entries, sums, opaque values)
    ["ops.base"],          # what a stanza declares
    ["ops.arithmetic", "ops.elementwise", "ops.broadcasting", "ops.contractions",
     "ops.linalg", "ops.extremes"],        # the stanzas, one family per module ...
    ["ops.reductions",     # ... (softmax's rule is written with sum's node)
     "ops.composites"],    # ... (maximum, where, var: written with the others)
    ["ops"],               # the registry and its views: everything below reads no engine
    ["index"],
    ["collapse"],
    ["rules"],
    ["diff"],
    ["simplify"],
    ["pipeline"],          # forward rewrite -> reverse sweep -> simplify, written out once
    ["printing", "printing.base"],
    ["printing.names"],    # which values a printed result names, and what it calls them
    ["printing.text"],
    ["printing.latex", "printing.numpy"],
    ["printing.tensor",    # index tensors: einsum text, index-notation LaTeX, einsum/kron code
     "printing.notes",     # derivation notes: text, LaTeX, MathML, Markdown, HTML
     "printing.module"],   # whole-model generated code: forward() and backward() in one module
    ["jacobian"],          # Jacobians, Hessians, Hessian-vector products in matrix form
    ["tensor"],            # derivatives with no matrix form: einsum and Kronecker forms
    ["check"],
    ["reading"],           # NumPy's meaning of text: how vectors meet matrices
    ["infer"],             # shapes of undeclared variables, unified over the syntax tree
    ["parse"],
    ["steps"],             # the step-by-step derivation, from the sweep record
    ["sympy_bridge"],      # SymPy matrix expressions in and out
    ["api"],
    ["flags"],             # the command line's spellings (W=n,d), shared with the web page
    ["web.state"],         # the web page's request, read from and written to its URL
    ["web.examples", "web.render", "web.worker"],   # its menu, its sections, its workers
    ["web.server"],        # the HTTP server and its safety checks
    ["web"],
    ["cli"],
    ["__init__"],          # the package facade re-exports the public API
    ["__main__"],          # ``python -m matcalc`` runs the command line
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    """``printing.text`` for matcalc/printing/text.py, ``printing`` for its __init__.py."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


SOURCES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), str(path))
         for name, path in SOURCES.items()}


def package_of(name: str) -> list[str]:
    """The package (as parts) a module's relative imports start from."""
    return list(SOURCES[name].relative_to(PACKAGE).parts[:-1])


def imported_modules(name: str, node: ast.AST) -> list[str]:
    """The matcalc modules (as layer names) an import statement names; [] for other packages."""
    if isinstance(node, ast.Import):
        return [alias.name[len("matcalc."):] or "__init__" for alias in node.names
                if alias.name == "matcalc" or alias.name.startswith("matcalc.")]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        parts = (node.module or "").split(".")
        if parts[0] != "matcalc":
            return []
        target = parts[1:]
    else:
        base = package_of(name)
        target = base[: len(base) - (node.level - 1)] + (node.module.split(".") if node.module
                                                          else [])
    found = []
    for alias in node.names:
        # ``from . import expr``: the imported name may itself be a module of that package
        submodule = ".".join(target + [alias.name])
        found.append(submodule if submodule in SOURCES else ".".join(target) or "__init__")
    return found


def all_imports():
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            for target in imported_modules(name, node):
                yield name, node, target


def test_every_module_has_a_layer():
    assert sorted(set(SOURCES) - set(RANK)) == [], "add new modules to LAYERS"
    assert sorted(set(RANK) - set(SOURCES)) == [], "remove deleted modules from LAYERS"


def test_the_import_resolver_sees_the_known_imports():
    pairs = {(name, target) for name, _node, target in all_imports()}
    assert ("printing.numpy", "printing.base") in pairs       # from .base import ...
    assert ("printing.latex", "expr") in pairs                # from .. import expr as E
    assert ("api", "printing.latex") in pairs                 # from .printing.latex import ...
    assert ("parse", "expr") in pairs                         # from . import expr as E


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_imports_flow_one_way(name):
    upward = [f"line {node.lineno}: {name} imports {target}"
              for module, node, target in all_imports() if module == name
              and RANK.get(target, -1) > RANK[name]]
    assert upward == []


def test_no_function_local_imports_of_matcalc_modules():
    misplaced = []
    for name, tree in TREES.items():
        top_level = {id(stmt) for stmt in tree.body}
        for node in ast.walk(tree):
            if imported_modules(name, node) and id(node) not in top_level:
                misplaced.append(f"{name}, line {node.lineno}")
    assert misplaced == []


def _imports_on_demand(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every ``importlib.import_module("matcalc.x")`` and every call
    ``helper("x")`` of a function here that passes its argument to ``import_module``."""
    def is_import(node):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "import_module")
    helpers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               and any(is_import(n) for n in ast.walk(f))}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        arg = node.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            continue
        if is_import(node) and arg.value.startswith("matcalc."):
            found.append((node.lineno, arg.value[len("matcalc."):]))
        elif isinstance(node.func, ast.Name) and node.func.id in helpers:
            found.append((node.lineno, arg.value))
    return found


def test_modules_imported_on_demand_flow_one_way_too():
    """Imports deferred for start-up time (the command line's engines, api's notes) obey the
    layers like any import; the package facade sits above everything."""
    upward, seen = [], set()
    for name, tree in TREES.items():
        for line, target in _imports_on_demand(tree):
            seen.add(name)
            if RANK.get(target, 10 ** 6) > RANK[name]:
                upward.append(f"{name} line {line} imports {target}")
    assert {"cli", "api"} <= seen and upward == []


# ---------------------------------------------------------------------------------------------
# Operations live in the registry
# ---------------------------------------------------------------------------------------------

ENGINES = ["index", "collapse", "rules", "diff", "simplify", "printing.base", "printing.text",
           "printing.latex", "printing.numpy", "jacobian", "tensor", "check", "parse", "api"]


def test_the_registry_sits_below_every_engine():
    assert all(RANK["ops"] < RANK[engine] for engine in ENGINES)
    assert RANK["ops"] > max(RANK[name] for name in SOURCES if name.startswith("ops."))


def node_classes_defined_in(name: str) -> list[str]:
    """The node classes (subclasses of Node, by base name) a module defines."""
    found = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id == "Node" or b.id.startswith("_"))
                for b in node.bases):
            found.append(node.name)
    return found


def test_operation_node_classes_are_defined_in_their_stanzas():
    """expr holds the leaves and the algebra Python's operators build; every other node class
    is defined in the ops module whose stanza declares it."""
    outside = {name: node_classes_defined_in(name) for name in SOURCES
               if name not in ("expr",) and not name.startswith("ops")}
    assert {name: found for name, found in outside.items() if found} == {}


# ---------------------------------------------------------------------------------------------
# No eval on user text
# ---------------------------------------------------------------------------------------------

#: Built-in functions that run text as code, and SymPy's parsers (sympify and parse_expr call
#: eval). ``re.compile`` and the like are not the built-in compile.
BUILTIN_EVALUATORS = {"eval", "exec", "compile", "__import__"}
SYMPY_PARSERS = {"sympify", "parse_expr"}

#: The only places allowed such a call, each with why it is safe.
ALLOWED = {
    # runs source that matcalc generated itself; user text reaches it only as validated
    # identifiers and exact numbers (see compile_module's docstring)
    ("printing.numpy", "compile_module", "exec"),
    ("printing.numpy", "compile_module", "compile"),
    # sympify of a shape entry: a Dim (SymPy integer or symbol) made by matcalc.dims.dim,
    # never a string, so nothing is parsed
    ("expr", "Node._intern", "sympify"),
    # sympify of a rule's coefficient: a number or SymPy expression built by the engines
    ("collapse", "contract", "sympify"),
}


def evaluator(call: ast.Call) -> str | None:
    """The name of the evaluating function ``call`` calls, or None for any other call."""
    func = call.func
    if isinstance(func, ast.Name):
        name = func.id
        if name in BUILTIN_EVALUATORS or name in SYMPY_PARSERS:
            return name
    elif isinstance(func, ast.Attribute):
        name = func.attr
        if name in SYMPY_PARSERS:
            return name                                   # sympy.sympify, parsing.parse_expr
        if name in BUILTIN_EVALUATORS and isinstance(func.value, ast.Name) \
                and func.value.id == "builtins":
            return name                                   # builtins.eval
    else:
        return None
    if name == "S" and any(is_text(arg) for arg in call.args):
        return name                                       # sympy.S("...") is sympify
    return None


def is_text(arg: ast.AST) -> bool:
    """A string literal, f-string, or a name that says it holds text."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return True
    if isinstance(arg, ast.JoinedStr):
        return True
    if isinstance(arg, ast.Name):
        return any(word in arg.id.lower() for word in ("text", "source", "string", "str"))
    return False


def evaluating_calls():
    """(module, enclosing function, called name, call, argument) for every evaluating call."""
    for name, tree in TREES.items():
        stack = [(tree, "")]
        while stack:
            node, where = stack.pop()
            for child in ast.iter_child_nodes(node):
                inner = where
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    inner = f"{where}.{child.name}" if where else child.name
                if isinstance(child, ast.Call) and evaluator(child):
                    yield name, inner, evaluator(child), child
                stack.append((child, inner))


def test_no_evaluating_call_outside_the_allowed_places():
    found = {(module, where, called) for module, where, called, _ in evaluating_calls()}
    assert found - ALLOWED == set()


def test_the_only_exec_is_compile_module():
    execs = [(module, where) for module, where, called, _ in evaluating_calls()
             if called == "exec"]
    assert execs == [("printing.numpy", "compile_module")]


def test_sympify_is_never_applied_to_text():
    for module, where, called, call in evaluating_calls():
        if called in ("sympify", "S", "parse_expr"):
            assert not any(is_text(arg) for arg in call.args), (module, where)


# ---------------------------------------------------------------------------------------------
# Public names are documented
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in matcalc.__all__ if callable(getattr(matcalc, n))])
def test_every_public_name_has_a_one_line_summary(name):
    doc = getattr(matcalc, name).__doc__
    assert doc and doc.strip(), f"matcalc.{name} has no docstring"
    lines = inspect.cleandoc(doc).splitlines()
    summary = lines[0].strip()
    assert summary and summary.endswith("."), f"matcalc.{name}: {summary!r}"
    assert len(lines) == 1 or not lines[1].strip(), \
        f"matcalc.{name}: the summary runs onto a second line"
