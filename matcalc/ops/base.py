"""What an operation stanza declares: the ``Operation`` record and its parts.

Contract: every operation matcalc knows is one ``Operation`` in ``matcalc.ops`` (a unary
elementwise function is one ``Function`` row, turned into an ``Operation`` by the elementwise
family). The record is data: the engines (parser, index calculus, rules, simplifier, printers,
check, docs) read it and own every traversal; a stanza never calls an engine. Fields a concern
does not apply to are None, and ``excluded`` says why (the meta-test in tests/test_registry.py
demands every concern or a reason).

Spellings for the printers are either data (a name, a template) or a function
``(printer, node, args) -> (text, precedence)`` for notation no template expresses; such a
function uses only the printer's public helpers (``wrap``, ``paren``, ``array``, ``helper``,
``call``, ``reshape``, ``np``, ``portable``), named in the printers' module docstrings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

#: The precedence scale every printer uses (Python's order): ``+ -`` < ``* / @`` < unary ``-``
#: < ``**`` < ``.T`` and calls < atoms.
ADD, MUL, UNARY, POW, POSTFIX, ATOM = 10, 20, 30, 40, 50, 60

#: The kinds of derivative rule (JAX's vocabulary): linear and bilinear rules are adjoints;
#: elementwise ones multiply by a scalar derivative; custom ones are derived from an index form
#: with sums inside functions, or written in index form by hand.
RULE_KINDS = ("linear", "bilinear", "multilinear", "elementwise", "custom")

#: The concerns a complete operation covers (tests/test_registry.py checks each).
CONCERNS = ("node", "syntax", "build", "index form", "rule kind", "text", "latex", "numpy",
            "value name", "docs example")



@dataclass(frozen=True)
class Keyword:
    """A keyword argument of a call: ``axis=0``. ``attribute`` is where the node keeps it (for
    printing it back); ``values`` are the literals allowed; ``positional`` allows it as the
    second positional argument (``sum(X, 0)``)."""

    name: str
    attribute: str
    values: tuple = (None, 0, 1)
    default: object = None
    positional: bool = True

    @property
    def choices(self) -> str:
        """The allowed values in words: "0, 1 or None"."""
        words = [repr(v) for v in self.values if v is not None] + \
            (["None"] if None in self.values else [])
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


AXIS = Keyword("axis", "axis", values=(None, 0, 1, -1, -2))
#: NumPy's keepdims: the parser applies it (``matcalc.reading``); no node keeps it.
KEEPDIMS = Keyword("keepdims", "", values=(False, True), default=False, positional=False)


@dataclass(frozen=True)
class Syntax:
    """How text writes an operation.

    ``form`` is "call" (``name(operands, keywords)``), "operator" (binary ``a @ b``), "prefix"
    (``-a``) or "attribute" (``a.T``); ``spelling`` the name or symbol. For a call,
    ``operands`` is the fewest and most expression operands and ``arguments`` what they are:
    "expressions", "sizes" (``ones(n, m)``: dimension names or integers) or "einsum" (a
    subscript string, then operands).
    """

    form: str
    spelling: str
    operands: tuple[int, int] = (1, 1)
    arguments: str = "expressions"
    keywords: tuple[Keyword, ...] = ()

    @property
    def usage(self) -> str:
        """How the arguments read, for error messages: "exactly one argument"."""
        if self.arguments == "sizes":
            return "one size" if self.operands[1] == 1 else "one or two sizes"
        low, high = self.operands
        if self.keywords:
            optional = ", ".join(f"{k.name}={k.choices}" for k in self.keywords)
            return f"an expression and optionally {optional}"
        if low == high:
            return "exactly one argument" if low == 1 else f"exactly {low} arguments"
        return f"{low} to {high} arguments"


def call(name: str, operands: tuple[int, int] = (1, 1), keywords: tuple = (),
         arguments: str = "expressions") -> Syntax:
    """The syntax of a call ``name(...)``."""
    return Syntax("call", name, operands, arguments, tuple(keywords))


def value_named(name: str) -> Callable:
    """Generated code calls the value ``name``."""
    def value_name(node, layer: str | None) -> str:
        return name
    return value_name


def value_per_layer(prefix: str, alone: str) -> Callable:
    """``prefix`` with the layer's suffix inside a layer (``a1`` for tanh(z1)), else
    ``alone``."""
    def value_name(node, layer: str | None) -> str:
        return prefix + layer if layer is not None else alone
    return value_name


def value_per_operand(prefix: str) -> Callable:
    """``prefix_X`` for an operation of a variable X (``inv_A``), else ``prefix``."""
    def value_name(node, layer: str | None) -> str:
        operand = node.args[0]
        name = getattr(operand, "name", None) if not operand.args else None
        return f"{prefix}_{name}" if isinstance(name, str) else prefix
    return value_name


@dataclass(frozen=True, eq=False)
class Operation:
    """One operation: everything every engine needs to know about it.

    - ``name``: how text and the API call it (``trace``, ``@``, ``exp``); ``family`` its
      group; ``summary`` one line for docs and docstrings;
    - ``node``: the node class it builds (None when it is built from others, as ``mean``);
      ``syntax``: how text writes it (None: not written in text, as a broadcast);
      ``build``: the builder the parser and the Python API call (None for the core operators,
      which Python's own operators build);
    - ``lower``: entry (i, j) in index notation, ``(node, bases, i, j, fresh) -> sympy``;
      ``hand``: d Z_ij / d X_kl by hand for an operation with no finite index form;
      ``recognize``: writes a derived rule in terms of the operation's own value (a normaliser);
      ``kind``: the rule kind (``RULE_KINDS``);
    - ``peel``: for Jacobians in matrix form, M with op(...) = M @ g from the operands' own
      (``(node, lin, g) -> Node | None``; linear operations);
    - ``domain`` and ``kinks``: the inputs an elementwise function is defined on and the points
      where it is not differentiable (the numeric check reads both);
    - spellings ``text``, ``latex``, ``numpy``, ``portable`` (see the module docstring);
    - ``value_name``: the name generated code gives the value, ``(node, layer) -> str``;
    - ``rewrites``: simplification rules whose top is this operation, each ``node -> node |
      None`` with a docstring saying what it decreases;
    - ``examples``: (label, builder of a node from ``docs`` variables) for docs/rules.md;
    - ``vector``: when NumPy holds an n x 1 value of the operation as a 1-D array (the reading
      text gives it, see ``matcalc.ops.is_vector``): "operands" (when its non-scalar operands
      are: elementwise operations), "always" (a reduction along an axis, a diagonal), "right"
      (``A @ v``: when its right operand is), None (never: a transpose is a 2-D column);
    - ``excluded``: concern -> why it does not apply.
    """

    name: str
    family: str
    summary: str
    node: type | None = None
    syntax: Syntax | None = None
    build: Callable | None = None
    lower: Callable | None = None
    hand: Callable | None = None
    recognize: Callable | None = None
    kind: str | None = None
    peel: Callable | None = None
    domain: str = "real"
    kinks: tuple = ()
    text: object = None
    latex: object = None
    numpy: object = None
    portable: object = None
    value_name: Callable | None = None
    rewrites: tuple = ()
    examples: tuple = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
    function: object = None         # the ``Function`` row of an elementwise function
    vector: str | None = None

    def __repr__(self) -> str:
        return f"<Operation {self.name}>"


@dataclass(frozen=True)
class Function:
    """One row of the elementwise table: a scalar function applied to every entry.

    ``sympy`` is the SymPy function whose derivative (by ``sympy.diff``) is the elementwise
    derivative matcalc uses; ``folds`` whether a function of a constant is computed exactly
    (exp(2), sqrt(d)); ``domain`` the inputs it is defined on ("real", "positive"); ``kinks``
    where it is not differentiable; ``latex`` its LaTeX name (or a spelling function);
    ``numpy`` a template (``{np}``: the namespace; ``{x}``: the operand inside call parentheses;
    ``{xw}``: the operand beside an operator), ``precedence`` that of the template's outermost
    operator; ``portable`` the source of a helper function ``{name}(xp, x)`` for code on any
    array namespace, where NumPy's spelling is not shared by PyTorch and JAX; ``value`` the
    letter a printed result names the function's value by; ``helper`` (with ``numpy`` None)
    the source of a helper ``{name}(x)`` that generated code calls where NumPy has no such
    function (erf: entry by entry with ``math.erf``, so NumPy arrays only).
    """

    name: str
    sympy: object
    summary: str
    latex: object
    numpy: str
    domain: str = "real"
    kinks: tuple = ()
    folds: bool = False
    precedence: int = POSTFIX
    portable: str | None = None
    value: str | None = None
    helper: str | None = None       # a helper {name}(x) NumPy code calls where NumPy has none
