"""Whole-model backward code: one generated module with ``forward()`` and ``backward()``.

Contract: ``backward_code(...)`` takes an expression, the variables (or subexpressions) to
differentiate by, their gradients from one reverse sweep (simplified together) and the sweep's
adjoints, and returns a ``BackwardCode`` whose ``source`` is a self-contained Python module:

- ``forward(inputs..., xp=None)`` (the inputs in declaration order, each checked against its
  declared shape) computes the expression and returns ``(loss, kept)``: ``kept`` is a tuple of
  exactly what backward needs — the inputs and the intermediate values the gradients use (an
  activation, a residual, softmax probabilities, a normalised activation), each computed once.
  A gradient may write a forward value in its simplified form (``softmax((1/sqrt(d)) * z)``
  for forward's ``softmax(z / sqrt(d))``, ``G * x / s`` around forward's ``x / s``): it is
  matched to forward's value all the same;
- ``backward(kept, [G=None,] xp=None)`` returns every requested gradient, each shared
  intermediate (every δ of the recursion) computed once; for a non-scalar expression ``G`` is
  the upstream gradient (ones when None).

Names say what a value is: ``z1`` for a layer's affine map ``W1 @ X + b1``, ``a1`` for its
activation, ``resid`` for a difference with the data, ``delta_z1`` for the gradient with
respect to ``z1`` (up to the constant factor the gradients carry in front, which the docstring
states), ``dW1`` for a gradient; the user may name any subexpression. Every generated name goes
through one ``Names`` allocator, so none collides with a variable or dimension name. The module
docstring restates the mathematics in matcalc text, one line per named value.

Every array operation goes through the namespace ``xp`` (NumPy when None), so the functions run
on PyTorch and JAX arrays too (see ``printing.numpy``: portable code). ``BackwardCode.module()``
compiles the source with ``printing.numpy.compile_module``, the one place generated code runs.
"""

from __future__ import annotations

import re
import textwrap
import types
from typing import Callable, Sequence

from .. import expr as E
from ..dims import is_one
from ..errors import MatcalcError, UnsupportedError
from ..ops import operation_of
from ..ops.linalg import Inv
from ..simplify import const_value, scalar_factor, simplify_all
from .numpy import (Names, NumpyPrinter, bind_dims, compile_module, convert_output, dimensions,
                    factors_out_of_sums,
                    identifiers, is_diagonal_matrix, math_import, shared_nodes, take_inputs,
                    take_optional, update_dead_temporaries, used_helpers)
from .text import to_text

#: Nodes recomputed in backward from what they are made of, rather than kept by forward.
CHEAP = (E.Const, E.Eye, E.Broadcast, E.Transpose)


def recomputed(node: E.Node) -> bool:
    """Whether backward recomputes ``node`` rather than taking it from forward: cheap nodes;
    diag(v), whose products are broadcasts of v; inv(A), since a product with it is a solve
    (two solves cost less than one inverse, and are more accurate)."""
    return isinstance(node, CHEAP + (Inv,)) or is_diagonal_matrix(node)


class BackwardCode:
    """A generated module with ``forward()`` and ``backward()``; ``source`` is its text.

    ``inputs`` are forward's arguments, ``kept`` the names of what forward keeps for backward
    (in order), ``outputs`` the names of the gradients backward returns.
    """

    def __init__(self, source: str, inputs: tuple, kept: tuple, outputs: tuple, single: bool):
        self.source = source
        self.inputs, self.kept, self.outputs = inputs, kept, outputs
        self.single = single
        self._module: types.ModuleType | None = None

    def module(self) -> types.ModuleType:
        """The source compiled as a module (once); it has ``forward`` and ``backward``."""
        if self._module is None:
            self._module = compile_module(self.source, "matcalc_backward")
        return self._module

    @property
    def forward(self) -> Callable:
        """The compiled ``forward(inputs..., xp=None) -> (loss, kept)``."""
        return self.module().forward

    @property
    def backward(self) -> Callable:
        """The compiled ``backward(kept, [G=None,] xp=None)`` returning the gradients."""
        return self.module().backward

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<BackwardCode: forward({', '.join(self.inputs)}) keeps {len(self.kept)} " \
               f"values; backward returns {', '.join(self.outputs)}>"


# ---------------------------------------------------------------------------------------------
# Names from structure
# ---------------------------------------------------------------------------------------------

def _suffix(name: str) -> str:
    """What follows the leading letters of a name: "1" for W1, "_out" for W_out."""
    return re.sub(r"^[A-Za-z]+", "", name)


def _layer_hint(node: E.Node, parameters: set) -> str | None:
    """``z<k>`` for a product with a parameter matrix W<k> (an affine layer's pre-activation)."""
    for a in node.args:
        if isinstance(a, E.Var) and id(a) in parameters and a.kind == "matrix":
            return "z" + _suffix(a.name)
    return None


def structural_hints(root: E.Node, parameters: set, given: dict) -> dict:
    """A wanted name for each node of ``root``, from its structure or the user's ``given`` names.

    W1 @ X + b1 (or X @ W1 + b1.T) is z1, tanh of it a1 (any activation; other operations
    name their values in their stanzas), a difference with a data variable resid, the root loss
    (out when it is not
    a scalar); anything else t.
    """
    hints: dict[int, str] = {}
    for n in E.postorder([root]):
        hint = given.get(id(n))
        if hint is None:
            hint = _hint(n, hints, parameters)
        if hint is not None:
            hints[id(n)] = hint
    if id(root) not in given:
        hints[id(root)] = "loss" if root.is_scalar else "out"
    return hints


def _hint(n: E.Node, hints: dict, parameters: set) -> str | None:
    arg_hints = [hints.get(id(a), "") for a in n.args]
    layer = next((h for h in arg_hints if re.fullmatch(r"z.*", h)), None)
    if isinstance(n, E.MatMul):
        return _layer_hint(n, parameters)
    if isinstance(n, (E.Add, E.Sub)):
        a, b = n.args
        if isinstance(n, E.Sub) and isinstance(b, E.Var) and id(b) not in parameters:
            return "resid"
        if layer is not None and (isinstance(b, (E.Broadcast, E.Var)) or
                                  isinstance(a, (E.Broadcast, E.Var))):
            return layer                       # the bias added to the product
        return None
    op = operation_of(n)
    if op is None or op.value_name is None:
        return None
    return op.value_name(n, layer[1:] if layer is not None else None)


# ---------------------------------------------------------------------------------------------
# The formulas, in matcalc text
# ---------------------------------------------------------------------------------------------

def formulas(nodes: Sequence[E.Node], names: dict) -> list[str]:
    """``name = text`` for each node, its named operands written as their names (``names``:
    node id -> name). Linear: unnamed operands are used once, so each is written once."""
    placeholder: dict[int, E.Node] = {}
    rebuilt: dict[int, E.Node] = {}

    def as_operand(a: E.Node) -> E.Node:
        if id(a) in names:
            if id(a) not in placeholder:
                placeholder[id(a)] = E.Var.make(names[id(a)], a.shape, check_name=False)
            return placeholder[id(a)]
        return rebuild(a)

    def rebuild(node: E.Node) -> E.Node:
        if id(node) in rebuilt:
            return rebuilt[id(node)]
        stack = [node]
        while stack:
            n = stack[-1]
            pending = [a for a in n.args if id(a) not in names and id(a) not in rebuilt]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            args = tuple(as_operand(a) for a in n.args)
            rebuilt[id(n)] = E.with_args(n, args)
        return rebuilt[id(node)]

    return [f"{names[id(n)]} = {to_text(rebuild(n))}" for n in nodes]


def _text_or_note(node: E.Node) -> str:
    try:
        return to_text(node)
    except UnsupportedError:
        return "(too large to write out in full; see forward below)"


# ---------------------------------------------------------------------------------------------
# The module
# ---------------------------------------------------------------------------------------------

def backward_code(expression: E.Node, root: E.Node, wrt: Sequence[E.Node],
                  gradients: Sequence[E.Node], adjoints: dict, variables: Sequence[E.Var],
                  upstream: E.Var | None, single: bool = False,
                  names: dict | None = None) -> BackwardCode:
    """Generate the module computing ``root`` (the form of ``expression`` that was
    differentiated) and the ``gradients`` with respect to ``wrt``.

    ``adjoints`` are the reverse sweep's (node id -> adjoint, unsimplified), used to name the
    δ's; ``variables`` are every input variable (``upstream``, the G of a non-scalar
    expression, excepted); ``names`` maps a subexpression to the name the user wants for it.
    """
    wrt, gradients = list(wrt), list(gradients)
    parameters = {id(w) for w in wrt if isinstance(w, E.Var)}
    # forward's arguments: the variables in their order (the declaration's, for text)
    ordered = list(variables) + [w for w in wrt if isinstance(w, E.Var) and w not in variables]
    dims = dimensions([root] + list(gradients) + ordered)
    reserved = [v.name for v in ordered] + [d.name for d in dims] + ["forward", "backward"]
    if upstream is not None:
        reserved.append(upstream.name)
    alloc = Names(reserved)
    numpy_name, xp = alloc.get("numpy"), alloc.get("xp")
    kept_arg = alloc.get("kept")
    dtype = alloc.get("dtype")
    given = _given_names(root, names or {})
    hints = structural_hints(root, parameters, given)

    # -- what backward needs from forward -------------------------------------------------
    forward_nodes = E.postorder([root])
    # each forward value, and its simplified form (which is how the simplified gradients write
    # it: softmax((1/sqrt(d)) * z) for forward's softmax(z / sqrt(d))), to the forward node
    origin: dict[int, E.Node] = {id(n): n for n in forward_nodes}
    simplified = simplify_all(forward_nodes)     # (held: origin is keyed by their ids)
    for n, simple in zip(forward_nodes, simplified):
        origin.setdefault(id(simple), n)
    gradients = transposed_forward_products(gradients, set(origin))
    gradients = forward_quotients(gradients, set(origin))
    kept_ids: set[int] = set()
    needed: dict = {}                     # a node backward uses -> the forward node computing it
    seen: set[int] = set()
    stack = list(gradients)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if id(n) in origin and not recomputed(n):
            kept_ids.add(id(origin[id(n)]))    # an input, or a value forward computes anyway
            needed[n] = origin[id(n)]
            continue
        stack.extend(n.args)
    kept_nodes = [n for n in forward_nodes if id(n) in kept_ids]

    # -- forward -----------------------------------------------------------------------------
    helpers: dict[str, str] = {}
    local = {v.name: v.name for v in ordered + ([upstream] if upstream is not None else [])}
    local.update({d.name: d.name for d in dims})
    intermediates = {id(n) for n in kept_nodes if not isinstance(n, E.Var)}
    fwd = NumpyPrinter(xp, local, shared_nodes([root]) | intermediates | set(given), alloc,
                       portable=True, hints=hints, helpers=helpers, numpy_name=numpy_name,
                       dtype=dtype)
    printed_root = fwd.print_all([root])[0]
    kept_names = [fwd.done[id(n)].text for n in kept_nodes]
    loss_text = convert_output(printed_root, _kind(root), fwd)
    value_name = None
    if not root.is_scalar and not loss_text.isidentifier():
        # a statement, so that the value can be made in an array it has just made
        # (value = gamma.T * t_2, value += beta.T); put back in the return when it is not
        value_name = alloc.get("value")
        fwd.lines.append(f"{value_name} = {loss_text}")
        fwd.statements.append((value_name, printed_root.node))
    if value_name in update_dead_temporaries(fwd, [value_name or loss_text] + kept_names):
        loss_text = value_name
    elif value_name is not None:
        del fwd.lines[-1]

    # -- backward: the gradients over placeholders for what forward kept ----------------------
    kept_vars = {id(f): E.Var.make(fwd.done[id(f)].text, f.shape, check_name=False)
                 for f in kept_nodes if not isinstance(f, E.Var)}
    placeholders = {n: f if isinstance(f, E.Var) else kept_vars[id(f)]
                    for n, f in needed.items() if n is not f or not isinstance(f, E.Var)}
    roots = factors_out_of_sums(E.substitute(gradients, placeholders))
    # a label for each forward value whose δ backward may name: its name, or one from its hint
    labels: dict[int, str] = {}
    for n in reversed(forward_nodes):                # from the loss down: the recursion's order
        if n is root or isinstance(n, E.Var) or recomputed(n) or id(n) not in adjoints:
            continue
        if id(n) in fwd.named:
            labels[id(n)] = fwd.done[id(n)].text
        elif hints.get(id(n), "t") != "t":
            labels[id(n)] = alloc.get(hints[id(n)])
    deltas = _delta_names(forward_nodes, labels, adjoints, placeholders)
    bwd_hints = {key: name for key, (name, _, _, _) in deltas.items()}
    output_names = [("d" + w.name) if isinstance(w, E.Var) else "d" + hints.get(id(w), "t")
                    for w in wrt]
    shared = shared_nodes(roots)
    kinds = [w.kind if isinstance(w, E.Var) else "matrix" for w in wrt]
    for r, wanted, kind in zip(roots, output_names, kinds):
        if kind == "matrix" or id(r) not in shared:
            # (a gradient another one also reads, returned reshaped to a vector or number, is
            # a column under another name: the returned value takes the name, not dbeta_1)
            bwd_hints.setdefault(id(r), wanted)
    bwd = NumpyPrinter(xp, local | {p.name: p.name for p in placeholders.values()},
                       shared, alloc, portable=True, hints=bwd_hints,
                       helpers=helpers, numpy_name=numpy_name, dtype=dtype,
                       math_name=fwd.math)
    printed = bwd.print_all(roots)
    results, returned = [], []
    for p, kind, wanted in zip(printed, kinds, output_names):
        text = convert_output(p, kind, bwd)
        if text.isidentifier():
            returned.append(text)
        else:
            name = alloc.get(wanted)
            bwd.lines.append(f"{name} = {text}")       # (a statement, to update in place)
            bwd.statements.append((name, p.node))
            returned.append(name)
    update_dead_temporaries(bwd, returned)

    # G: the upstream gradient of a non-scalar expression, ones by default
    defaults: list[str] = []
    if upstream is not None:               # its shape checked (dimensions bound below)
        defaults = take_optional(upstream, bwd, set(dims))

    # dimensions backward binds from the kept arrays; the rest (and the dtype) forward keeps
    bwd_code = identifiers("\n".join(bwd.lines + results + defaults))
    bwd_dims = [d for d in dims if d.name in bwd_code]
    kept_vars = [n if isinstance(n, E.Var) else kept_vars[id(n)] for n in kept_nodes]
    bwd_body: list[str] = []
    bound = bind_dims(bwd_dims, kept_vars, bwd_body)
    extra_kept = [d.name for d in bwd_dims if d not in bound]
    if dtype in bwd_code:
        extra_kept.append(dtype)
    all_kept = kept_names + extra_kept

    # forward's own dimensions and dtype
    fwd_code = identifiers("\n".join(fwd.lines + [printed_root.text] + extra_kept))
    fwd_dims = [d for d in dims if d.name in fwd_code]
    fwd_body, fwd_bound = take_inputs(fwd, ordered, dtype in fwd_code)
    unbound = [d.name for d in fwd_dims if d not in fwd_bound]

    # -- the text ------------------------------------------------------------------------------
    signature = [v.name for v in ordered] + unbound
    kept_tuple = "(" + ", ".join(all_kept) + ("," if len(all_kept) == 1 else "") + ")"
    value = "loss" if root.is_scalar else "value"
    fwd_lines = [f"def forward({', '.join(signature + [f'{xp}=None'])}):",
                 f'    """The {value} and what backward needs: ({value}, kept), kept = '
                 f'{kept_tuple}."""',
                 f"    {xp} = {numpy_name} if {xp} is None else {xp}"]
    fwd_lines += ["    " + line for line in fwd_body + fwd.lines]
    fwd_lines.append(f"    return {loss_text}, {kept_tuple}")

    bwd_signature = [kept_arg] + ([f"{upstream.name}=None"] if upstream is not None else []) + \
        [f"{xp}=None"]
    gradient_list = ", ".join(returned)
    upstream_doc = "" if upstream is None else \
        f" {upstream.name} is the upstream gradient (ones when None)."
    bwd_lines = [f"def backward({', '.join(bwd_signature)}):",
                 f'    """The gradients ({gradient_list}) from what forward kept.'
                 f'{upstream_doc}"""',
                 f"    {xp} = {numpy_name} if {xp} is None else {xp}"]
    if all_kept:
        bwd_lines.append(f"    {kept_tuple[1:-1]} = {kept_arg}")
    bwd_lines += ["    " + line for line in bwd_body + defaults + bwd.lines + results]
    bwd_lines.append(f"    return {returned[0] if single else gradient_list}" +
                     ("," if not single and len(returned) == 1 else ""))

    doc = _module_doc(expression, root, fwd, bwd, kept_names, all_kept, signature, returned,
                      deltas, printed, wrt, upstream, xp, single)
    imports = [f"import {numpy_name}" if numpy_name == "numpy" else f"import numpy as {numpy_name}"]
    math_user = fwd if fwd.uses_math else bwd         # (backward takes forward's name for math)
    if math_import(math_user):
        imports.append(math_import(math_user).strip())
    helper_text = "".join(source + "\n\n" for source in used_helpers(helpers, fwd_lines +
                                                                      bwd_lines))
    source = f'"""{doc}"""\n\n' + "\n".join(imports) + "\n\n\n" + helper_text + \
        "\n".join(fwd_lines) + "\n\n\n" + "\n".join(bwd_lines) + "\n"
    return BackwardCode(source, tuple(signature), tuple(all_kept), tuple(returned), single)


def transposed_forward_products(roots: list, in_forward: set) -> list:
    """``roots`` with each product that is the transpose of a forward value written as that
    transpose: simplification turns (W2 @ (W1 @ X)).T into X.T @ W1.T @ W2.T, which backward
    would compute again; as z2.T it takes forward's z2.

    >>> from matcalc.expr import Var
    >>> W = Var.make("W", ("n", "d")); X = Var.make("X", ("d", "m"))
    >>> z = W @ X
    >>> [to_text(r) for r in transposed_forward_products([X.T @ W.T], {id(z)})]
    ['(W @ X).T']
    """
    flipped: dict[int, E.Node] = {}           # node id -> the node equal to its transpose
    replace: dict = {}
    for n in E.postorder(roots):
        if isinstance(n, E.Transpose):
            flipped[id(n)] = n.args[0]
        elif isinstance(n, E.MatMul):
            a, b = n.args
            flipped[id(n)] = E.MatMul.make(flipped[id(b)], flipped[id(a)])
            if id(flipped[id(n)]) in in_forward:
                replace[n] = E.Transpose.make(flipped[id(n)])
        else:
            flipped[id(n)] = E.Transpose.make(n)
    return E.substitute(roots, replace) if replace else list(roots)


def forward_quotients(roots: list, in_forward: set) -> list:
    """``roots`` with each (x * y) / z written x * (y / z) where forward computes y / z (layer
    norm's normalised X in ``sum(G * Xc / s, axis=0)``), so backward takes forward's value.

    >>> from matcalc.expr import Var
    >>> x, y, z = (Var.make(name, ("n", "m")) for name in "xyz")
    >>> forward_value = y / z                  # held: the set holds only its id
    >>> [to_text(r) for r in forward_quotients([x * y / z], {id(forward_value)})]
    ['x * (y / z)']
    """
    replace: dict = {}
    for n in E.postorder(roots):
        if isinstance(n, E.Div) and isinstance(n.args[0], E.Mul):
            for kept, other in (n.args[0].args, n.args[0].args[::-1])[::-1]:
                quotient = E.Div.make(kept, n.args[1])
                if id(quotient) in in_forward:
                    replace[n] = E.Mul.make(other, quotient)
                    break
    return E.substitute(roots, replace) if replace else list(roots)


def _kind(node: E.Node) -> str:
    if node.is_scalar:
        return "scalar"
    return "vector" if is_one(node.cols) else "matrix"


def _given_names(root: E.Node, names: dict) -> dict:
    """The user's names (name -> subexpression) as node id -> name, checked."""
    inside = {id(n) for n in E.postorder([root])}
    given: dict[int, str] = {}
    for name, node in names.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise MatcalcError(f"{name!r} is not a valid name for generated code")
        if not isinstance(node, E.Node) or id(node) not in inside:
            raise MatcalcError(f"cannot name {name!r}: it is not a subexpression of "
                               f"{_text_or_note(root)}")
        given[id(node)] = name
    return given


def _delta_names(forward_nodes, labels: dict, adjoints: dict, placeholders: dict) -> dict:
    """For the backward node that is (a constant multiple of) the adjoint of a labelled forward
    value z: (delta_z, z's label, the constant factor or None, z's node), by backward node id."""
    candidates = [n for n in reversed(forward_nodes) if id(n) in labels]
    if not candidates:
        return {}
    simplified = simplify_all([adjoints[id(n)] for n in candidates])
    simplified = E.substitute(simplified, placeholders)
    out: dict[int, tuple] = {}
    for n, s in zip(candidates, simplified):
        factor = None
        sf = scalar_factor(s)
        if sf is not None and const_value(sf[0]) is not None:
            factor, s = sf
        if isinstance(s, E.Var) or recomputed(s) or id(s) in out:
            continue
        out[id(s)] = ("delta_" + labels[id(n)], labels[id(n)], factor, n)
    return out


def _module_doc(expression, root, fwd, bwd, kept_names, all_kept, signature, returned, deltas,
                printed, wrt, upstream, xp, single) -> str:
    f_names = {i: fwd.done[i].text for i in fwd.named if i in fwd.done}
    b_names = {i: bwd.done[i].text for i in bwd.named if i in bwd.done}
    for key, (_, label, _, node) in deltas.items():      # the values the δ's are named after
        if key in b_names:
            f_names.setdefault(id(node), label)
    f_nodes = [n for n in E.postorder([root]) if id(n) in f_names]
    b_nodes = [n for n in E.postorder([p.node for p in printed]) if id(n) in b_names]
    wrapped = textwrap.wrap(_text_or_note(expression), 92, break_long_words=False,
                            break_on_hyphens=False)
    lines = ["Forward and backward passes of", ""] + ["    " + w for w in wrapped] + \
        ["", "generated by matcalc: the gradients come from one reverse sweep.", ""]
    lines.append(f"forward({', '.join(signature)}, {xp}=None) computes")
    for text in formulas(f_nodes, f_names):
        lines.append("    " + text)
    if id(root) not in f_names:
        label = "loss" if root.is_scalar else "value"
        lines.append("    " + formulas([root], {**f_names, id(root): label})[0])
    lines.append(f"and returns ({'loss' if root.is_scalar else 'value'}, kept) with kept = "
                 f"({', '.join(all_kept)}).")
    lines.append("")
    what = "loss" if upstream is None else f"loss = sum({upstream.name} * value)"
    lines.append(f"backward(kept{', ' + upstream.name + '=None' if upstream else ''}, {xp}=None) "
                 f"computes the gradients of the {what}")
    for n, text in zip(b_nodes, formulas(b_nodes, b_names)):
        note = deltas.get(id(n))
        if note is not None and b_names[id(n)].startswith("delta_"):
            _, label, factor, _ = note
            if factor is None:
                text += f"    # = dloss/d{label}"
            else:
                scale = to_text(factor)
                scale = scale if re.fullmatch(r"[\w.]+", scale) else f"({scale})"
                text += f"    # dloss/d{label} = {scale} * {b_names[id(n)]}"
        lines.append("    " + text)
    out_names = {**b_names}
    roots = [p.node for p in printed]
    extra = [(r, name) for r, name in zip(roots, returned) if id(r) not in b_names]
    for r, name in extra:
        lines.append("    " + formulas([r], {**out_names, id(r): name})[0])
    lines.append(f"and returns {'(' + ', '.join(returned) + ')' if not single else returned[0]}.")
    lines.append("")
    lines.append("Vectors are 1-D arrays and scalars numbers (0-d arrays outside NumPy).")
    lines.append(f"{xp} is the array namespace: NumPy when None; torch, jax.numpy and others "
                 "work too.")
    return "\n".join(lines).replace("\\", "\\\\").replace('"""', "'''")
