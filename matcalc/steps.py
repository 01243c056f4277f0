"""The derivation step by step, read off the record of the reverse sweep.

Contract: ``build_steps(expression, wrt, record, gradients, upstream)`` turns the record of a
reverse sweep — each ``diff.Step``: a node, the operand position, the node's upstream gradient,
the contribution, and the derived ``rules.Rule`` with its index-notation record — into a ``Steps``
note. Nothing is derived here: each block shows one step of the record, in sweep order, as the
rule recorded it —

1. the operation in index notation (``rule.entry``: Z_ij = Σ_k A_ik B_kj);
2. the chain rule against the upstream gradient (``rule.objective``:
   ∂y/∂A_kl = Σ_ij G_ij ∂Z_ij/∂A_kl);
3. the derivative of one entry, with its Kronecker deltas (``rule.derivative``);
4. the deltas summed away (``rule.reduced``);
5. the remaining sum recognised as matrix form (``rule.log`` names the collapse pattern);
6. the matrix result (``rule.template``: G Bᵀ), naming the rule —

in the user's own names: the rule's placeholders (operands X0, X1, upstream G, dimensions D0, D1,
...) are mapped back to the step's operands, its upstream gradient and the actual dimensions.
Intermediate values are named Z_1, Z_2, ... in forward order and their adjoints δ_1, δ_2, ...
(δ_n = ∂f/∂Z_n: the δ recursion of the seed notes); a value used more than once gets one block per
use, and its adjoint is shown as the sum of those contributions before it is used.

Jacobians, Hessians and Hessian-vector products take more than one sweep; ``jacobian_steps``,
``hessian_steps`` and ``hvp_steps`` (``second_order_steps`` picks one) put each sweep's blocks
into a part of its own, from the same records the engine (``jacobian``) computes with:

- Jacobian of a vector f: part 1, the vector-Jacobian product y = Σ_i G_i f_i with a symbolic
  upstream G of f's shape; part 2, the Jacobian read off the VJP: it is linear in G, M @ G
  (``linear_matrix``), so J = Mᵀ (numerator layout, m×n);
- Hessian: part 1, the gradient g = ∂f/∂x; part 2, the VJP of g with an upstream G of x's
  shape; part 3, H = Mᵀ read off M @ G, and its simplified form;
- Hessian-vector product: part 1, the gradient g; part 2, the gradient of h = sum(g * v); the
  result.

Numbering runs on from part to part (part 2's intermediates are Z_4, Z_5, ... after part 1's
Z_1 to Z_3), so no name means two things. A result with no matrix form (an index-notation object
with ``to_text()`` and ``to_latex()``) is shown in its own notation in the last block.
"""

from __future__ import annotations

from dataclasses import replace

import sympy
from sympy import Indexed, IndexedBase, KroneckerDelta

from . import expr as E
from .diff import Step
from .dims import format_shape, is_one
from .errors import UnsupportedError
from .jacobian import linear_matrix
from .ops.contractions import Sum
from .printing.base import MAX_EXPANDED, expanded_size
from .printing.latex import latex_name, to_latex
from .printing.notes import (Block, Chain, Equation, Ix, Mx, Name, Note, Partial, Terms, Via,
                              formula_latex, formula_text, latex_text)
from .printing.text import name_values, to_text
from .rules import vjp_rule
from .pipeline import differentiate
from .simplify import simplify_all

#: The engine's own index symbols: entry (i, j) of an operation, entry (k, l) of its operand.
I, J, K, L = sympy.symbols("i j k l", integer=True)
#: Letters for summation indices, in order of preference (the seed notes sum over k).
LETTERS = "klpqrstuvwabcdefgh"
#: The longest gradient the Result block writes out in the user's variables (in characters).
RESULT_LIMIT = 1000


class Steps(Note):
    """The step-by-step derivation of a ``Derivation``: a ``Note`` (``text()``, ``latex()``,
    ``latex_document()``, ``mathml()``, ``markdown()``, ``html()``) whose blocks follow the
    reverse sweep; ``block.source`` is the record entry (``diff.Step``) each block shows."""

    def __iter__(self):
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)


def build_steps(expression: E.Node, wrt, record: list[Step], gradients, upstream) -> Steps:
    """The steps of a derivation, from its sweep record.

    >>> import matcalc as mc
    >>> A = mc.Matrix("A", "m", "k"); B = mc.Matrix("B", "k", "n")
    >>> res = mc.grad(A @ B, A)
    >>> steps = build_steps(res.expression, res.wrt, res.record, res.gradients, res.upstream)
    >>> [b.rule for b in steps][1]
    'MatMul, operand 0 (bilinear)'
    """
    return _Builder(expression, list(wrt), list(record), list(gradients), upstream).build()


def _fresh(wanted: list[str], taken: set) -> str:
    for name in wanted:
        if name not in taken:
            return name
    n = 1
    while f"{wanted[0]}_{n}" in taken:
        n += 1
    return f"{wanted[0]}_{n}"


def _entry(base: IndexedBase, shape, i=I, j=J):
    """``base[i, j]`` with 0 on an axis of size 1 (the engine's convention)."""
    return base[0 if is_one(shape[0]) else i, 0 if is_one(shape[1]) else j]


def _sum_over(body, shape, i=I, j=J):
    limits = [(s, 0, d - 1) for s, d in ((i, shape[0]), (j, shape[1])) if not is_one(d)]
    return sympy.Sum(body, *limits) if limits else body


def _letters(shape, i=I, j=J) -> tuple:
    return tuple(s.name for s, d in ((i, shape[0]), (j, shape[1])) if not is_one(d))


def _rename(expr) -> tuple:
    """Letters for the summation indices the engine named q0, q1, ...: per formula, the first
    of k, l, p, q, ... not otherwise in it (so Z_ij = Σ_k A_ik B_kj, as the notes write it)."""
    bound: list = []
    for sub in sympy.preorder_traversal(expr):
        if isinstance(sub, sympy.Sum):
            bound += [lim[0] for lim in sub.limits if lim[0] not in bound]
    others = {s.name for s in _index_symbols(expr)} - {s.name for s in bound
                                                       if s not in (I, J, K, L)}
    taken = set(others)
    out = []
    for s in sorted((s for s in bound if s not in (I, J, K, L)), key=lambda s: s.name):
        letter = next((c for c in LETTERS if c not in taken), s.name)
        taken.add(letter)
        out.append((s, letter))
    return tuple(out)


def _index_symbols(expr) -> set:
    found = set()
    for sub in sympy.preorder_traversal(expr):
        if isinstance(sub, Indexed):
            found |= {x for x in sub.indices if isinstance(x, sympy.Symbol)}
        elif isinstance(sub, KroneckerDelta):
            found |= {x for x in sub.args if isinstance(x, sympy.Symbol)}
        elif isinstance(sub, sympy.Sum):
            found |= {lim[0] for lim in sub.limits}
    return found


def _ix(expr, order: tuple = ()) -> Ix:
    return Ix(expr, _rename(expr), order)


class _Builder:
    """One sweep's note. The keyword options serve a note of several sweeps (a Hessian): ``prefix``
    keeps this sweep's keys apart from another's, ``taken`` holds names already shown, ``first``
    is the first number of Z_n and δ_n, ``objective`` the preferred names of what is
    differentiated, ``given`` names chosen for some nodes (the gradient g), and ``ones=False``
    leaves out "G all ones" (an upstream that stands for any vector, as in a Jacobian)."""

    def __init__(self, expression, wrt, record, gradients, upstream, *, prefix: str = "",
                 taken=(), first: int = 1, objective=(), given=None, ones: bool = True):
        self.root, self.wrt, self.record = expression, wrt, record
        self.gradients, self.upstream = gradients, upstream
        self.prefix, self.fkey = prefix, f"{prefix}_f"
        self.taken, self.first, self.preferred = set(taken), first, list(objective)
        self.given: dict[int, Name] = dict(given or {})     # node id -> its name
        self.ones = ones
        self.number = first - 1                # the last n of Z_n, δ_n used here
        self.names: dict[str, Name] = {}
        self.key: dict[int, str] = {}          # node id -> its key (IndexedBase label, Var name)
        self.display: dict[int, E.Node] = {}   # node id -> the variable standing for it
        self.adjoint_key: dict[int, str] = {}
        self.adjoint_var: dict[int, E.Node] = {}
        self.keep: list = []                   # the nodes named here stay alive: ids stay unique
        self._name_everything()

    # -- names ---------------------------------------------------------------------------------
    def _new_key(self, node: E.Node, name: Name) -> str:
        key = f"{self.prefix}_n{len(self.names)}"
        self.names[key] = name
        self.key[id(node)] = key
        self.display[id(node)] = E.Var.make(key, node.shape, check_name=False)
        self.keep.append(node)
        return key

    def _name_everything(self) -> None:
        order = E.postorder([self.root])
        wanted = {id(self.root)} | {id(w) for w in self.wrt}
        for s in self.record:
            wanted.add(id(s.node))
            wanted |= {id(a) for a in s.node.args}
        taken = {v.name for v in E.variables([self.root] + self.wrt)}
        taken |= {d.name for d in E.dimensions([self.root] + self.wrt)}
        if self.upstream is not None:
            taken.add(self.upstream.name)
        taken |= self.taken | {name.text for name in self.given.values()}
        objective = self.preferred or (["f", "L", "J"] if self.root.is_scalar else ["y", "s"])
        self.objective = _fresh(objective, taken)
        taken.add(self.objective)
        self.names[self.fkey] = Name(self.objective, latex_name(self.objective))
        inner = [n for n in order if id(n) in wanted and not self._is_leaf_or_constant(n)
                 and (n is not self.root or not self.root.is_scalar)]
        numbers = range(self.first, self.first + len(inner))
        letter = next((c for c in "ZUHT" if not ({c} | {f"{c}_{n}" for n in numbers}) & taken),
                      "Z")
        number = self.first - 1
        for node in order:
            if id(node) not in wanted or id(node) in self.key:
                continue
            if node is self.root and node.is_scalar and not isinstance(node, E.Var):
                self.key[id(node)] = self.fkey
                self.display[id(node)] = E.Var.make(self.fkey, node.shape, check_name=False)
                self.keep.append(node)
                continue
            if isinstance(node, E.Var):
                self._new_key(node, Name(node.name, latex_name(node.name)))
            elif E.constant_value(node) is not None:
                continue                                  # written as its value
            elif not node.args:
                self._new_key(node, Name(to_text(node), to_latex(node)))
            else:
                name, delta = self.given.get(id(node)), None
                if name is not None:                      # g, its adjoint δ_g
                    delta = Name(f"δ_{name.text}", rf"\delta_{{{name.latex}}}", adjoint=True)
                elif len(inner) == 1 and node is self.root:
                    name = Name(letter, letter)           # Z = A @ B: its adjoint is G
                else:
                    number += 1
                    name = Name(f"{letter}_{number}", f"{letter}_{{{number}}}")
                    delta = Name(f"δ_{number}", rf"\delta_{{{number}}}", adjoint=True)
                self._new_key(node, name)
                if node is not self.root:
                    akey = f"{self.prefix}_a{len(self.names)}"
                    self.names[akey] = delta
                    self.adjoint_key[id(node)] = akey
                    self.adjoint_var[id(node)] = E.Var.make(akey, node.shape, check_name=False)
        self.number = number
        for w in self.wrt:                # a target the expression does not contain (f linear)
            if id(w) not in self.key and isinstance(w, E.Var):
                self._new_key(w, Name(w.name, latex_name(w.name)))
        if self.upstream is not None:
            self.names[self.upstream.name] = Name(self.upstream.name,
                                                  latex_name(self.upstream.name), adjoint=True)
            self.adjoint_key[id(self.root)] = self.upstream.name
            self.adjoint_var[id(self.root)] = self.upstream

    def _is_leaf_or_constant(self, node) -> bool:
        return not node.args or E.constant_value(node) is not None

    def base(self, node) -> IndexedBase:
        return IndexedBase(self.key[id(node)])

    def show(self, node) -> E.Node:
        """The node as the note writes it: its name if it has one, else itself."""
        return self.display.get(id(node), node)

    def definition(self, node) -> E.Node:
        """The node's operation over its operands' names: Z_2 = tanh(Z_1)."""
        return node.remake(tuple(self.show(a) for a in node.args), {})

    # -- the note ------------------------------------------------------------------------------
    def build(self) -> Steps:
        uses: dict[int, list[int]] = {}
        for t, s in enumerate(self.record):
            uses.setdefault(id(s.node.args[s.position]), []).append(t)
        self.uses = uses
        self.named_contribution: list = [self.contribution(s) for s in self.record]
        blocks = [self.setting()]
        announced: set = set()
        for t, s in enumerate(self.record):
            blocks.append(self.block(t, s, announced))
        blocks.append(self.result())
        wrt = ", ".join(self._short(w, 30) for w in self.wrt)
        title = f"Gradient of {self._short(self.root, 80)} with respect to {wrt}, step by step"
        return Steps(title, tuple(blocks), dict(self.names))

    @staticmethod
    def _short(node, limit: int) -> str:
        try:
            text = to_text(node)
        except UnsupportedError:              # too large to write out
            return "the expression"
        return text if len(text) <= limit else text[:limit - 1] + "…"

    def setting(self) -> Block:
        equations = []
        for node in E.postorder([self.root]):
            if id(node) in self.key and node.args and id(node) in self.display:
                equations.append(Equation(Mx(self.display[id(node)]),
                                          (Mx(self.definition(node)),),
                                          format_shape(node.shape)))
        remarks = []
        if isinstance(self.root, E.Var) or not self.root.args:
            equations.append(Equation(Ix(IndexedBase(self.fkey)), (Mx(self.root),),
                                      "the expression"))
        if self.upstream is not None:
            g = IndexedBase(self.upstream.name)
            z = self.base(self.root)
            objective = _sum_over(_entry(g, self.root.shape) * _entry(z, self.root.shape),
                                  self.root.shape)
            equations.append(Equation(Ix(IndexedBase(self.fkey)), (_ix(objective),),
                                      "what is differentiated",
                                      ("the upstream gradient ", Ix(g), " = ",
                                       Ix(Partial(IndexedBase(self.fkey), z)),
                                       " has the shape of ", Ix(z),
                                       *(("; with none given it is all ones (seed 003: "
                                          "gradients = None)",) if self.ones else ()))))
        if any(id(n) in self.adjoint_key for n in E.postorder([self.root]) if n is not self.root):
            example = next(n for n in E.postorder([self.root]) if id(n) in self.adjoint_key
                           and n is not self.root)
            remarks.append(("Each intermediate value has an adjoint: ",
                            Ix(IndexedBase(self.adjoint_key[id(example)])), " = ",
                            Ix(Partial(IndexedBase(self.fkey), self.base(example))),
                            " and so on (the delta of the seed notes). The sweep below visits the "
                            "operations from the last to the first, and pushes each adjoint to "
                            "the operands."))
        remarks.append(("In index notation ", Ix(KroneckerDelta(I, K)),
                        " is the Kronecker delta: 1 when ", Ix(sympy.Eq(I, K)),
                        ", else 0. A sum over an index with a delta sets that index."))
        return Block(("The expression",), tuple(equations), remarks=tuple(remarks))

    # -- one step ------------------------------------------------------------------------------
    def _bases(self, s: Step) -> tuple[dict, dict]:
        """Rule placeholders -> the note's bases (names) or values (constants)."""
        names, values = {}, {}
        if s.node is self.root and self.upstream is None:
            values[IndexedBase("G")] = sympy.Integer(1)
        else:
            names[IndexedBase("G")] = IndexedBase(self.adjoint_key[id(s.node)])
        target = s.node.args[s.position]
        for p, operand in enumerate(s.node.args):
            value = E.constant_value(operand)
            if id(operand) in self.key:
                key = self.key[id(operand)]
                if operand is target and p != s.position:
                    key = self._held(key)
                names[IndexedBase(f"X{p}")] = IndexedBase(key)
            elif value is not None:
                values[IndexedBase(f"X{p}")] = value
        return names, values

    def _held(self, key: str) -> str:
        """The name of a second use of an operand, held fixed while the first is varied: Z_1′.
        (The rule differentiates one operand position; the other use gets its own step.)"""
        held = key + "′"
        if held not in self.names:
            name = self.names[key]
            self.names[held] = Name(name.text + "′", name.latex + "'")
        return held

    def user(self, expr, s: Step, inverse: dict):
        """A rule's SymPy record in the note's names and the actual dimensions."""
        names, values = self._bases(s)
        expr = expr.xreplace(inverse)
        if values:
            expr = expr.replace(lambda x: isinstance(x, Indexed) and x.base in values,
                                lambda x: values[x.base])
        expr = expr.xreplace(names)
        opaque = {}
        for base in sorted({x.base for x in expr.atoms(Indexed)}, key=lambda b: str(b.label)):
            label = str(base.label)
            if label in self.names:
                continue
            # an entry of a whole-matrix function the rule keeps opaque: inv(X)_lk
            key = f"{self.prefix}_o{label}"
            operands = [self.names[self.key[id(a)]] for a in s.node.args if id(a) in self.key]
            self.names[key] = Name(f"{label}({', '.join(n.text for n in operands)})",
                                   rf"\operatorname{{{latex_text(label)}}}\left("
                                   rf"{', '.join(n.latex for n in operands)}\right)")
            opaque[base] = IndexedBase(key)
        return expr.xreplace(opaque) if opaque else expr

    def contribution(self, s: Step) -> E.Node:
        """The rule's matrix form over the note's names: G @ B.T, δ_2 * (1 - tanh(Z_1) ** 2)."""
        rule, inverse = vjp_rule(s.node, s.position)
        adjoint = s.adjoint if s.node is self.root else self.adjoint_var[id(s.node)]
        node_map = {rule.placeholders[0]: adjoint}
        for ph, operand in zip(rule.placeholders[1:], s.node.args):
            node_map[ph] = self.show(operand)
        named = E.substitute([rule.template], node_map, inverse)[0]
        return simplify_all([named])[0]

    def _partial_of(self, operand, indices: bool = True):
        target = _entry(self.base(operand), operand.shape, K, L) if indices else self.base(operand)
        return Partial(IndexedBase(self.fkey), target)

    def block(self, t: int, s: Step, announced: set) -> Block:
        rule = s.rule
        _, inverse = vjp_rule(s.node, s.position)
        node, operand = s.node, s.node.args[s.position]
        z = _entry(self.base(node), node.shape)
        a = _entry(self.base(operand), operand.shape, K, L)
        f = IndexedBase(self.fkey)
        seeded = node is self.root and self.upstream is None       # the adjoint is 1
        equations = []
        placed, _ = self._bases(s)
        order = tuple(str(placed[b].label) for b in (IndexedBase(f"X{p}")
                                                    for p in range(len(node.args)))
                      if b in placed)

        # the upstream gradient, summed over the uses of the node, before it is used
        node_uses = self.uses.get(id(node), [])
        if not seeded and len(node_uses) > 1 and id(node) not in announced:
            announced.add(id(node))
            vias = Terms(*[Via(Partial(f, self.base(node)), sympy.Integer(u + 1))
                           for u in node_uses])
            total = self.named_contribution[node_uses[0]]
            for u in node_uses[1:]:
                total = E.add(total, self.named_contribution[u])
            equations.append(Equation(Ix(IndexedBase(self.adjoint_key[id(node)])),
                                      (Ix(Partial(f, self.base(node))), Ix(vias), Mx(total)),
                                      "upstream gradient",
                                      ("the sum over the ", str(len(node_uses)),
                                       " uses of ", Ix(self.base(node)))))

        entry = self.user(rule.entry, s, inverse)
        equations.append(Equation(Ix(z), (_ix(entry, order),), "index notation",
                                  (f"the index form of {rule.op}",)))
        g = (sympy.Integer(1) if seeded else
             _entry(IndexedBase(self.adjoint_key[id(node)]), node.shape))
        if not seeded:
            chain = _sum_over(g * Partial(z, a), node.shape)
            equations.append(Equation(Ix(Partial(f, a)), (_ix(chain),), "chain rule",
                                      ("where ", Ix(g), " = ", Ix(Partial(f, z)))))
        derivative = self.user(rule.derivative, s, inverse)
        inner = None if seeded else _inner(derivative, g)
        if inner is not None:
            equations.append(Equation(Ix(Partial(z, a)), (_ix(inner, order),),
                                      "entrywise derivative", ("differentiated by SymPy",)))
            rename = _rename(inner)
        else:
            equations.append(Equation(Ix(Partial(f, a)), (_ix(derivative, order),),
                                      "entrywise derivative", ("differentiated by SymPy",)))
            rename = _rename(derivative)
        reduced = sympy.Add(*[self.user(r, s, inverse) for r in rule.reduced])
        deltas = _delta_notes(derivative, dict(rename))
        if deltas:
            equations.append(Equation(Ix(Partial(f, a)), (_ix(reduced, order),), "deltas summed",
                                      deltas))
        named = self.named_contribution[t]
        if rule.log:
            letters = _letters(operand.shape, K, L)
            rhs = []
            chain = _product_chain(reduced, (a.indices[0], a.indices[1]), self.names)
            if chain is not None:
                rhs.append(_ix(chain))
            rhs.append(Mx(named, letters) if letters else Mx(named))
            why = "; ".join(_rename_words(w, dict(_rename(reduced))) for w in rule.log)
            equations.append(Equation(Ix(Partial(f, a)), tuple(rhs), "matrix form", (why,)))
        # the result for the operand
        rule_words = f"{rule.op}, operand {s.position} ({rule.kind})"
        op_uses = self.uses[id(operand)]
        if len(op_uses) > 1:
            lhs = Ix(Via(Partial(f, self.base(operand)), sympy.Integer(t + 1)))
            label = f"result, use {op_uses.index(t) + 1} of {len(op_uses)}"
            rhs = (Mx(named),)
        elif id(operand) in self.adjoint_key:
            lhs = Ix(IndexedBase(self.adjoint_key[id(operand)]))
            label, rhs = "result", (Ix(Partial(f, self.base(operand))), Mx(named))
        else:
            lhs, label, rhs = Ix(Partial(f, self.base(operand))), "result", (Mx(named),)
        equations.append(Equation(lhs, rhs, label, (f"rule {rule_words}",)))

        heading = (f"Step {t + 1}: ", Equation(Mx(self.show(node)), (Mx(self.definition(node)),)),
                   ", towards ", Mx(self.show(operand)))
        remarks = []
        if sum(a is operand for a in node.args) > 1:
            held = IndexedBase(self._held(self.key[id(operand)]))
            remarks.append((Ix(self.base(operand)), " is more than one operand here: this step "
                            f"varies operand {s.position} and holds the other use, written ",
                            Ix(held), ", fixed (its value is ", Ix(self.base(operand)),
                            "); the other use has its own step, and the two add up."))
        return Block(heading, tuple(equations), rule_words, tuple(remarks), source=s)

    # -- the result ----------------------------------------------------------------------------
    def _written_out(self, node: E.Node) -> str | None:
        """The node as text if it is short enough for a note, else None."""
        if expanded_size([node]) > MAX_EXPANDED:
            return None
        text = to_text(node)
        return text if len(text) <= RESULT_LIMIT else None

    def result(self) -> Block:
        f = IndexedBase(self.fkey)
        equations, remarks, too_long, long_gradients = [], [], [], []
        for w, gradient in zip(self.wrt, self.gradients):
            rhs = []
            uses = self.uses.get(id(w), [])
            if len(uses) > 1:
                rhs.append(Ix(Terms(*[Via(Partial(f, self.base(w)), sympy.Integer(u + 1))
                                      for u in uses])))
                total = self.named_contribution[uses[0]]
                for u in uses[1:]:
                    total = E.add(total, self.named_contribution[u])
                rhs.append(Mx(total))
            elif uses and id(w) in self.adjoint_key:
                rhs.append(Ix(IndexedBase(self.adjoint_key[id(w)])))
            elif uses:
                rhs.append(Mx(self.named_contribution[uses[0]]))
            full = self._written_out(gradient)
            if full is None:
                too_long.append(f"∂{self.objective}/∂{self.names[self.key[id(w)]].text}")
                long_gradients.append((w, gradient))
            elif not rhs or formula_text(rhs[-1], self.names) != full:
                rhs.append(Mx(gradient))
            if not rhs:
                rhs.append(Mx(gradient))
            equations.append(Equation(Ix(Partial(f, self.base(w))), tuple(rhs), "gradient",
                                      ("simplified, in your variables",) if len(rhs) > 1
                                      and full is not None else ()))
        if too_long:
            # written out in full they would be too long for a line: in your variables, with
            # the values they share named first, as res.text() prints them
            taken = {name.text for name in self.names.values()}
            named = name_values([g for _, g in long_gradients], taken=taken)
            for var, value in named.definitions:
                equations.append(Equation(Mx(var), (Mx(value),), "named value"))
            for (w, _), root in zip(long_gradients, named.roots):
                equations.append(Equation(Ix(Partial(f, self.base(w))), (Mx(root),), "gradient",
                                          ("in your variables, with the values named above",)))
            remarks.append((f"{', '.join(too_long)} in your variables "
                            f"{'is' if len(too_long) == 1 else 'are'} written with named values, "
                            "as res.text() prints "
                            f"{'it' if len(too_long) == 1 else 'them'}.",))
        if self.upstream is not None and self.ones:
            ones = E.ones(*self.upstream.shape)
            for w, gradient in zip(self.wrt, self.gradients):
                with_ones = simplify_all(E.substitute([gradient], {self.upstream: ones}))[0]
                if self._written_out(with_ones) is not None:
                    equations.append(Equation(Ix(Partial(f, self.base(w))), (Mx(with_ones),),
                                              "no G given",
                                              ("G is all ones: seed 003's gradients = None",)))
        return Block(("Result",), tuple(equations), remarks=tuple(remarks))


def _inner(derivative, g):
    """∂Z_ij/∂X_kl from the recorded ∂/∂X_kl Σ_ij G_ij Z_ij: the sum over i, j and the factor
    G_ij taken off (SymPy differentiates under the sum, so they are the outermost layers)."""
    body = derivative
    while isinstance(body, sympy.Sum) and all(lim[0] in (I, J) for lim in body.limits):
        body = body.function
    if body == 0:
        return sympy.Integer(0)
    terms = sympy.Add.make_args(body)
    inner = []
    for term in terms:
        factors = list(sympy.Mul.make_args(term))
        if g not in factors:
            return None
        factors.remove(g)
        inner.append(sympy.Mul(*factors))
    return sympy.Add(*inner)


def _delta_notes(derivative, rename: dict) -> tuple:
    """Which index each Kronecker delta sets, as the engine sums them (``Term.eliminate_deltas``):
    a summed index takes the other index's value."""
    bound = set()
    deltas = []
    for sub in sympy.preorder_traversal(derivative):
        if isinstance(sub, sympy.Sum):
            bound |= {lim[0] for lim in sub.limits}
        elif isinstance(sub, KroneckerDelta) and sub not in deltas:
            deltas.append(sub)
    notes: list = []
    mapping: dict = {}
    for d in deltas:
        a, b = (mapping.get(x, x) for x in d.args)
        if a == b:
            continue
        if a in bound:
            old, new = a, b
        elif b in bound:
            old, new = b, a
        else:
            continue
        bound.discard(old)
        mapping = {k: (new if v == old else v) for k, v in mapping.items()}
        mapping[old] = new
        if notes:
            notes.append("; ")
        letters = tuple(rename.items())
        notes += ["summing ", Ix(d, letters), " over ", Ix(old, letters), " sets ",
                  Ix(sympy.Eq(old, new, evaluate=False), letters)]
    return tuple(notes)


def _rename_words(words: str, rename: dict) -> str:
    for symbol, letter in rename.items():
        words = words.replace(symbol.name, letter)
    return words


def _transposed(entry: Indexed, names: dict) -> Indexed:
    label = str(entry.base.label)
    key = f"{label}ᵀ"
    if key not in names:
        name = names.get(label) or Name(label, label)
        names[key] = Name(f"{name.text}ᵀ", rf"{name.latex}^{{\top}}", name.adjoint)
    return IndexedBase(key)[entry.indices[1], entry.indices[0]]


def _product_chain(reduced, out: tuple, names: dict):
    """Σ_j G_kj B_lj written as the chain Σ_j G_kj (Bᵀ)_jl, when the record is one sum over one
    index of two entries (the matrix-product pattern of the collapse); else None."""
    if not isinstance(reduced, sympy.Sum) or len(reduced.limits) != 1:
        return None
    s = reduced.limits[0][0]
    coeff, factors = reduced.function.as_coeff_mul()
    if len(factors) != 2 or not all(isinstance(x, Indexed) and len(x.indices) == 2
                                    for x in factors):
        return None
    row, col = out
    first, second = sorted(factors, key=lambda x: (row not in x.indices) if row != 0
                           else (col in x.indices))
    chain = []
    for factor, want in ((first, (row, s)), (second, (s, col))):
        idx = tuple(factor.indices)
        if idx == want:
            chain.append(factor)
        elif idx[::-1] == want:
            chain.append(_transposed(factor, names))
        else:
            return None
    product = Chain(*chain)
    return sympy.Sum(coeff * product if coeff != 1 else product, *reduced.limits)


# ---------------------------------------------------------------------------------------------
# Second order: Jacobians, Hessians and Hessian-vector products, one part per sweep
# ---------------------------------------------------------------------------------------------

def second_order_steps(kind: str, expression: E.Node, x: E.Node, result,
                       direction: E.Var | None = None) -> Steps:
    """The steps of a Jacobian, Hessian or Hessian-vector product (``kind``: "jacobian",
    "hessian" or "hvp", as ``MatrixDerivative.kind``); ``result`` is the derivative found.

    >>> import matcalc as mc
    >>> x = mc.Vector("x", "n"); A = mc.Matrix("A", "n", "n")
    >>> res = mc.hessian(x.T @ A @ x, x)
    >>> steps = second_order_steps("hessian", res.expression, x, res.matrix)
    >>> for block in steps:
    ...     if "—" in block.heading[0]:
    ...         print(block.heading[0])
    Part 1 — the gradient
    Part 2 — differentiating the gradient
    Part 3 — reading the Hessian off
    """
    if kind == "jacobian":
        return jacobian_steps(expression, x, result)
    if kind == "hessian":
        return hessian_steps(expression, x, result)
    if kind == "hvp":
        if direction is None:
            raise UnsupportedError("the steps of a Hessian-vector product need its direction")
        return hvp_steps(expression, x, direction, result)
    raise UnsupportedError(f"no steps for a derivative of kind {kind!r}: "
                           "choose jacobian, hessian or hvp")


def jacobian_steps(f: E.Node, x: E.Node, result) -> Steps:
    """The Jacobian of a vector f: the sweep of its vector-Jacobian product with a symbolic
    upstream G, then J = Mᵀ read off the product, written M @ G.

    >>> import matcalc as mc
    >>> A = mc.Matrix("A", "m", "n"); x = mc.Vector("x", "n")
    >>> res = mc.jacobian(A @ x, x)
    >>> steps = jacobian_steps(A @ x, x, res.matrix)
    >>> eq = steps.blocks[-1].equations[-1]
    >>> print(" = ".join(formula_text(f, steps.names) for f in (eq.lhs, *eq.rhs)))
    J = ∂f/∂x = A.T.T = A
    """
    parts = _Parts(f, x)
    b1, steps, vjp, upstream, root = parts.vjp_sweep(f, x, "f")
    fb, y = _base_of(parts, b1, root, "f"), IndexedBase(b1.fkey)
    parts.part("the vector-Jacobian product", steps, remarks=(
        ("The Jacobian of the vector ", Ix(fb), " comes from one reverse sweep: ", Ix(y),
         " = sum(", Mx(upstream), " * ", Ix(fb), ") is differentiated with an upstream "
         "gradient ", Mx(upstream), " of the shape of ", Ix(fb), " that stands for any vector "
         "(it is never set to ones). The result is linear in it."),))
    jb = parts.key(parts.name("J"))
    reading = _reading_off(parts, b1, root, x, vjp, upstream, result, jb, fb, "Jacobian")
    parts.part("reading the Jacobian off", equations=reading)
    return parts.note(f"Jacobian of {_Builder._short(f, 80)} with respect to "
                      f"{_Builder._short(x, 30)}, step by step")


def hessian_steps(f: E.Node, x: E.Node, result) -> Steps:
    """The Hessian of a scalar f: the gradient g (part 1), the sweep of g's vector-Jacobian
    product with a symbolic upstream G (part 2), and H = Mᵀ read off it, written M @ G (part 3).

    >>> import matcalc as mc
    >>> x = mc.Vector("x", "n"); A = mc.Matrix("A", "n", "n")
    >>> res = mc.hessian(x.T @ A @ x, x)
    >>> steps = hessian_steps(x.T @ A @ x, x, res.matrix)
    >>> eq = steps.blocks[-1].equations[-1]
    >>> print(" = ".join(formula_text(f, steps.names) for f in (eq.lhs, *eq.rhs)))
    H = ∂g/∂x = (A.T + A).T = A + A.T
    """
    parts = _Parts(f, x)
    b1, g = _gradient_part(parts, f, x)                # g has x's shape, and so has G
    b2, steps, vjp, upstream, g = parts.vjp_sweep(g, x, "g")
    gb = _base_of(parts, b2, g, "g")
    parts.part("differentiating the gradient", steps, equations=(
        Equation(Ix(gb), (Ix(Partial(IndexedBase(b1.fkey), b1.base(x))), Mx(g)), "the gradient",
                 ("found in part 1",)),), remarks=(
        ("The Hessian is the Jacobian of ", Ix(gb), ". It comes from one more reverse sweep: ",
         Ix(IndexedBase(b2.fkey)), " = sum(", Mx(upstream), " * ", Ix(gb), ") is "
         "differentiated with an upstream gradient ", Mx(upstream), " of the shape of ",
         Ix(b2.base(x)), " that stands for any vector (it is never set to ones). The result is "
         "linear in it."),))
    hb = parts.key(parts.name("H"))
    reading = _reading_off(parts, b2, g, x, vjp, upstream, result, hb, gb, "Hessian")
    parts.part("reading the Hessian off", equations=reading)
    return parts.note(f"Hessian of {_Builder._short(f, 80)} with respect to "
                      f"{_Builder._short(x, 30)}, step by step")


def hvp_steps(f: E.Node, x: E.Node, v: E.Var, result) -> Steps:
    """The Hessian of a scalar f applied to v: the gradient g (part 1), the gradient of
    h = sum(g * v) with v held fixed (part 2), and the result.

    >>> import matcalc as mc
    >>> x = mc.Vector("x", "n"); A = mc.Matrix("A", "n", "n")
    >>> res = mc.hvp(x.T @ A @ x, x)
    >>> steps = hvp_steps(x.T @ A @ x, x, res.direction, res.matrix)
    >>> eq = steps.blocks[-1].equations[-1]
    >>> print(" = ".join(formula_text(f, steps.names) for f in (eq.lhs, *eq.rhs)))
    H v = ∂h/∂x = (A.T + A) @ v
    """
    parts = _Parts(f, x, v)
    b1, g = _gradient_part(parts, f, x)
    derived = differentiate(Sum.make(E.Mul.make(g, v)), [x], E.Const.make(1))   # as jacobian.hvp
    root, sweep, hv = derived.differentiated, derived.sweep, derived.gradients[0]
    given = {} if _is_leaf(g) else {id(g): parts.name("g")}
    b2, steps = parts.sweep(root, x, sweep.steps, hv, None, objective=["h", "s"], given=given)
    gb, h = _base_of(parts, b2, g, "g"), IndexedBase(b2.fkey)
    gname = formula_text(Ix(gb), parts.names)
    parts.part(f"differentiating sum({gname} * {v.name})", steps, equations=(
        Equation(Ix(gb), (Ix(Partial(IndexedBase(b1.fkey), b1.base(x))), Mx(g)), "the gradient",
                 ("found in part 1",)),), remarks=(
        ("The Hessian applied to ", Mx(v), " is the gradient of ", Ix(h), " = sum(", Ix(gb),
         " * ", Mx(v), "), with ", Mx(v), " held fixed: one more reverse sweep, and no Hessian "
         "is built."),))
    hessian = parts.name("H")
    hvb = parts.key(Name(f"{hessian.text} {v.name}", f"{hessian.latex} {latex_name(v.name)}"))
    lhs, why = Ix(hvb), ("the Hessian of ", Ix(IndexedBase(b1.fkey)), " applied to ", Mx(v))
    if isinstance(result, E.Node):
        rhs = [Ix(Partial(h, b2.base(x)))]
        if formula_text(Mx(hv), parts.names) != formula_text(Mx(result), parts.names):
            rhs.append(Mx(hv))
        rhs.append(Mx(result))
        equations = [Equation(lhs, tuple(rhs), "Hessian-vector product", why)]
    else:
        equations = [Equation(lhs, (Ix(Partial(h, b2.base(x))),), "Hessian-vector product",
                              why)] + _index_form(parts, result, lhs)
    parts.part("the result", equations=tuple(equations), numbered=False)
    return parts.note(f"Hessian-vector product of {_Builder._short(f, 80)} with respect to "
                      f"{_Builder._short(x, 30)}, along {v.name}, step by step")


class _Parts:
    """A note of several sweeps: the blocks of each part, one table of names for all of them
    (each sweep's keys carry a prefix of their own) and the names already shown."""

    def __init__(self, *nodes: E.Node):
        self.blocks: list = []
        self.names: dict = {}
        self.taken = {v.name for v in E.variables(list(nodes))}
        self.taken |= {d.name for d in E.dimensions(list(nodes))}
        self.number = 0            # the last n of Z_n, δ_n shown so far
        self.sweeps = 0
        self.count = 0             # parts so far

    def name(self, wanted: str) -> Name:
        """A name not shown anywhere in the note yet: g, or g_1 if the user has a g."""
        text = _fresh([wanted], self.taken)
        self.taken.add(text)
        return Name(text, latex_name(text))

    def key(self, name: Name) -> IndexedBase:
        """A key of the note's own for ``name``."""
        key = f"_q{len(self.names)}"
        self.names[key] = name
        return IndexedBase(key)

    def sweep(self, root, x, record, gradient, upstream, **options) -> tuple[_Builder, Steps]:
        """One sweep's blocks, numbered on from the sweeps before it."""
        self.sweeps += 1
        prefix = "" if self.sweeps == 1 else f"_{self.sweeps}"
        builder = _Builder(root, [x], list(record), [gradient], upstream, prefix=prefix,
                           taken=self.taken, first=self.number + 1, **options)
        steps = builder.build()
        self.names.update(steps.names)
        self.taken |= {name.text for name in steps.names.values()}
        self.number = builder.number
        return builder, steps

    def vjp_sweep(self, f, x, name: str) -> tuple[_Builder, Steps, E.Node, E.Var, E.Node]:
        """The sweep of ``f``'s vector-Jacobian product with a symbolic upstream G of its shape
        (never set to ones), as the pipeline differentiates it, the differentiated form called
        ``name`` unless it is a leaf: the builder, its blocks, the simplified product (linear in
        G), G and the form the sweep ran on."""
        upstream = E.Var.make(_fresh(["G"], self.taken), f.shape, check_name=False)
        derived = differentiate(f, [x], upstream)
        root, vjp = derived.differentiated, derived.gradients[0]
        given = {} if _is_leaf(root) else {id(root): self.name(name)}
        builder, steps = self.sweep(root, x, derived.sweep.steps, vjp, upstream, given=given,
                                    ones=False)
        return builder, steps, vjp, upstream, root

    def part(self, title: str, steps: Steps | None = None, equations=(), remarks=(),
             numbered: bool = True) -> None:
        """A part: a heading block (with ``equations`` and ``remarks``), then its sweep's
        blocks, each heading marked with the part."""
        self.count += 1
        heading = f"Part {self.count} — {title}" if numbered else title[:1].upper() + title[1:]
        self.blocks.append(Block((heading,), tuple(equations), remarks=tuple(remarks)))
        for block in (steps.blocks if steps is not None else ()):
            first, *rest = block.heading
            self.blocks.append(replace(block, heading=(
                f"Part {self.count}, {first[:1].lower()}{first[1:]}", *rest)))

    def note(self, title: str) -> Steps:
        return Steps(title, tuple(self.blocks), dict(self.names))


def _is_leaf(node: E.Node) -> bool:
    return not node.args or E.constant_value(node) is not None


def _base_of(parts: _Parts, builder: _Builder, node: E.Node, wanted: str) -> IndexedBase:
    """How the note writes ``node``: its name in the sweep, else a name of its own."""
    if id(node) in builder.key:
        return builder.base(node)
    return parts.key(parts.name(wanted))


def _gradient_part(parts: _Parts, f: E.Node, x: E.Node) -> tuple[_Builder, E.Node]:
    """Part 1 of a Hessian or Hessian-vector product: the gradient g, as ``gradient_of``
    computes it (the pipeline, with upstream 1)."""
    derived = differentiate(f, [x], E.Const.make(1))
    g = derived.gradients[0]
    builder, steps = parts.sweep(derived.differentiated, x, derived.sweep.steps, g, None)
    parts.part("the gradient", steps, remarks=(
        ("The gradient ", Ix(Partial(IndexedBase(builder.fkey), builder.base(x))),
         ", by one reverse sweep, as for any gradient; part 2 differentiates it again.",),))
    return builder, g


def _reading_off(parts: _Parts, builder: _Builder, root: E.Node, x: E.Node, vjp: E.Node,
                 upstream: E.Var, result, name: IndexedBase, rootb: IndexedBase,
                 what: str) -> tuple:
    """The last block of a Jacobian (of ``root``, the gradient g for a Hessian): the sweep's
    vector-Jacobian product is linear in G, M @ G (``linear_matrix``), so the Jacobian is Mᵀ.
    A result with no matrix form is shown in its own (index) notation."""
    y, xb = IndexedBase(builder.fkey), builder.base(x)
    gb = IndexedBase(upstream.name)
    jacobian = Ix(Partial(rootb, xb))
    entry = Ix(sympy.Eq(_entry(name, (root.rows, x.rows), K, L),
                        Partial(_entry(rootb, root.shape, K, L), _entry(xb, x.shape, L, K)),
                        evaluate=False))
    matrix = None
    if isinstance(result, E.Node) and root.cols == 1 and x.cols == 1:
        try:
            matrix = linear_matrix(vjp, upstream)
        except UnsupportedError:
            matrix = None
    equations = []
    if matrix is None:
        equations.append(Equation(Ix(Partial(y, xb)), (Mx(vjp),), "vector-Jacobian product",
                                  ("found in the sweep above; linear in ", Ix(gb))))
        if isinstance(result, E.Node):
            equations.append(Equation(Ix(name), (jacobian, Mx(result)), what, ()))
        else:
            equations.append(Equation(Ix(name), (jacobian,), what, ()))
            equations += _index_form(parts, result, Ix(name))
        return tuple(equations)
    product = [Mx(vjp), Mx(E.MatMul.make(matrix, upstream))]
    if formula_text(product[0], parts.names) == formula_text(product[1], parts.names):
        product.pop()
    equations.append(Equation(Ix(Partial(y, xb)), tuple(product), f"linear in {upstream.name}",
                              ("found in the sweep above: M @ ", Ix(gb), " with M = ",
                               Mx(matrix))))
    rhs = [jacobian, Mx(E.Transpose.make(matrix))]
    if formula_text(rhs[-1], parts.names) != formula_text(Mx(result), parts.names):
        rhs.append(Mx(result))
    why = ("M is the transposed Jacobian of ", Ix(rootb), ", as ", Ix(Partial(y, xb)),
           " = Jᵀ ", Ix(gb), "; the entries are ", entry, ", numerator layout, ",
           format_shape(result.shape), "; simplified, in your variables")
    equations.append(Equation(Ix(name), tuple(rhs), what, why))
    return tuple(equations)


def _index_form(parts: _Parts, result, lhs: Ix) -> list:
    """A result with no matrix form, written as it writes itself (``to_text()``,
    ``to_latex()``): ``lhs = result``, where a writing that is itself an equation
    (∂g_ij/∂X_kl = ...) gives its own left side."""
    text, latex = str(result.to_text()), str(result.to_latex())
    t_lhs, t_rhs = _split_equals(text)
    l_lhs, l_rhs = _split_equals(latex)
    why = ("no matrix form: it is written in index notation, entry by entry",)
    rhs = Ix(parts.key(Name(t_rhs, l_rhs)))
    if t_lhs is None and l_lhs is None:
        return [Equation(lhs, (rhs,), "index form", why)]
    own = Name(t_lhs if t_lhs is not None else formula_text(lhs, parts.names),
               l_lhs if l_lhs is not None else formula_latex(lhs, parts.names))
    return [Equation(Ix(parts.key(own)), (rhs,), "index form", why)]


def _split_equals(written: str) -> tuple[str | None, str]:
    r"""``written`` cut at its first "=" outside brackets (not part of <=, >=, != or ==):
    (left, right), or (None, written) when there is none.

    >>> _split_equals(r"\frac{\partial g_{ij}}{\partial X_{kl}} = A_{ik} B_{lj}")
    ('\\frac{\\partial g_{ij}}{\\partial X_{kl}}', 'A_{ik} B_{lj}')
    >>> _split_equals('einsum("ik,jl->ijkl", A, B)')
    (None, 'einsum("ik,jl->ijkl", A, B)')
    """
    depth = 0
    for n, c in enumerate(written):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif (c == "=" and depth == 0 and (n == 0 or written[n - 1] not in "<>!=")
              and written[n + 1:n + 2] != "="):
            return written[:n].strip(), written[n + 1:].strip()
    return None, written.strip()
