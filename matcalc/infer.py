"""Shapes of undeclared variables, inferred from how the text uses them.

Contract: ``infer(tree, declared, names, infer_kinds)`` takes the syntax tree Python's ``ast``
made of the text (nothing is evaluated), the declared shapes and the undeclared variable names,
and returns a shape for each of those names, or raises ``ShapeError`` naming a variable whose
shape the text leaves open, with how to declare it in the interface's spelling.

How: every dimension is a class in a union-find. Products (``@``), transposes, the square
operands of trace, det, logdet and inv, einsum's letters and ``ones(n, m)`` tie dimensions
together, and a dimension so tied is *general* (a size, not 1). Declared shapes give classes
their names (and 1 for a vector's second axis). Elementwise operators and functions broadcast, so
they cannot tell a scalar from a matrix: an operand whose dimension is not general when the
ties are done is ambiguous (``x * A``: is x a scalar or A's shape?) and refused; once the other
operand's dimension is general and this one is known not to be 1, they are unified. With
``infer_kinds`` (matrixcalculus.org's convention) a name's letter gives its kind: a-g scalars,
h-z vectors, A-Z matrices. A general class with no declared name is named n1, n2, ... (the
first names no variable or declared dimension uses), in order of first appearance.

The passes over the tree are iterative (the text may nest thousands of levels deep). Anything
this module does not model (a reduction along an axis, diag, a function it does not know) has
an opaque shape: it ties nothing, and the expression builders check it when the text is read.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from .errors import SPELLING, ShapeError, shape_hint
from .ops import CALLS

#: Reductions: a scalar without ``axis=``, an opaque shape with it.
REDUCTIONS = frozenset({"sum", "mean", "logsumexp", "max", "min", "var", "std", "norm", "norm1"})
#: Functions whose operand is square and whose value is a scalar, or the operand's shape.
SQUARE_TO_SCALAR = frozenset({"trace", "det", "logdet"})
SQUARE_TO_SAME = frozenset({"inv"})
#: Functions of one operand whose value has its shape (besides the elementwise ones).
SAME_SHAPE = frozenset({"softmax"})

_OPAQUE = None


class _Dims:
    """Dimension classes: union-find with, per class, a value (a declared name or an int, or
    None) and whether it is known to be a size other than 1 (general)."""

    def __init__(self):
        self.parent: list[int] = []
        self.value: list = []
        self.general: list[bool] = []
        self.one = self.new(1)

    def new(self, value=None, general: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.value.append(value)
        self.general.append(general or (value is not None and value != 1))
        return len(self.parent) - 1

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:                   # path compression
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> bool:
        """Tie a and b; False when they hold different values (the builders report that)."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        va, vb = self.value[a], self.value[b]
        if va is not None and vb is not None and va != vb:
            return False
        if (va == 1 and self.general[b]) or (vb == 1 and self.general[a]):
            return False
        self.parent[b] = a
        self.value[a] = va if va is not None else vb
        self.general[a] = self.general[a] or self.general[b]
        return True

    def mark_general(self, a: int) -> None:
        root = self.find(a)
        if self.value[root] != 1:
            self.general[root] = True

    def is_one(self, a: int) -> bool:
        return self.value[self.find(a)] == 1

    def is_general(self, a: int) -> bool:
        return self.general[self.find(a)]


def kind_of_letter(name: str) -> str:
    """matrixcalculus.org's convention: a-g scalars, h-z vectors, A-Z matrices (first letter).

    >>> kind_of_letter("alpha"), kind_of_letter("x"), kind_of_letter("W2")
    ('scalar', 'vector', 'matrix')
    """
    first = name[0]
    if "a" <= first <= "g":
        return "scalar"
    if "h" <= first <= "z":
        return "vector"
    return "matrix"


def infer(tree: ast.AST, declared: Mapping, names: list[str], infer_kinds: bool = False,
          taken: set | None = None) -> dict[str, tuple]:
    """A shape for each undeclared name in ``names``, as the shapes dict writes it.

    >>> t = ast.parse("trace(A @ X @ B)", mode="eval")
    >>> infer(t, {"A": ("n", "n")}, ["X", "B"])
    {'X': ('n', 'n1'), 'B': ('n1', 'n')}
    """
    return _Inference(declared, names, infer_kinds, taken or set()).run(tree)


class _Inference:
    def __init__(self, declared: Mapping, names: list[str], infer_kinds: bool, taken: set):
        self.dims = _Dims()
        self.by_name: dict = {}                 # declared dimension name -> class
        self.shapes: dict[str, tuple] = {}      # variable -> (rows class, cols class)
        self.pending: list = []                 # elementwise pairs, settled at the end
        self.order: list[str] = list(names)
        self.taken = set(taken) | set(declared) | set(names)
        self.by_kind: list[int] = []            # classes a letter's kind made general
        for name, shape in declared.items():
            self.shapes[name] = self.declared_shape(shape)
        for name in names:
            rows, cols = self.dims.new(), self.dims.new()
            if infer_kinds:
                kind = kind_of_letter(name)
                if kind == "scalar":
                    self.dims.union(rows, self.dims.one)
                    self.dims.union(cols, self.dims.one)
                else:
                    self.dims.mark_general(rows)
                    if kind == "vector":
                        self.dims.union(cols, self.dims.one)
                    else:
                        self.dims.mark_general(cols)
                        self.by_kind.append(cols)
            self.shapes[name] = (rows, cols)

    def dimension(self, d) -> int:
        if d == 1 or d == "1":
            return self.dims.one
        key = str(d)
        self.taken.add(key)
        if key not in self.by_name:
            self.by_name[key] = self.dims.new(int(key) if key.isdigit() else key)
        return self.by_name[key]

    def declared_shape(self, shape) -> tuple:
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else ()
        if len(shape) == 0:
            return (self.dims.one, self.dims.one)
        if len(shape) == 1:
            return (self.dimension(shape[0]), self.dims.one)
        return (self.dimension(shape[0]), self.dimension(shape[1]))

    # -- the pass over the tree ---------------------------------------------------------------
    def run(self, tree: ast.AST) -> dict[str, tuple]:
        body = tree.body if isinstance(tree, ast.Expression) else tree
        shapes: dict[int, tuple | None] = {}
        stack = [(body, False)]
        while stack:
            node, ready = stack.pop()
            children = self.operands(node)
            if not ready:
                stack.append((node, True))
                stack.extend((child, False) for child in children)
                continue
            shapes[id(node)] = self.shape_of(node, [shapes.pop(id(c), _OPAQUE)
                                                    for c in children])
        self.settle()
        return self.result()

    @staticmethod
    def operands(node: ast.AST) -> list:
        if isinstance(node, ast.BinOp):
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            return [node.operand]
        if isinstance(node, ast.Attribute):
            return [node.value]
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            op = CALLS.get(name)
            if op is None or op.syntax.arguments == "sizes":
                return []
            args = node.args[1:] if op.syntax.arguments == "einsum" else node.args
            return [a for a in args if not isinstance(a, ast.Starred)]
        return []

    def shape_of(self, node: ast.AST, operands: list):
        if isinstance(node, ast.Name):
            return self.shapes.get(node.id, (self.dims.one, self.dims.one)
                                   if node.id in self.by_name else _OPAQUE)
        if isinstance(node, ast.Constant):
            return (self.dims.one, self.dims.one)
        if isinstance(node, ast.UnaryOp):
            return operands[0]
        if isinstance(node, ast.Attribute):
            return None if operands[0] is None or node.attr != "T" else operands[0][::-1]
        if isinstance(node, ast.BinOp):
            left, right = operands
            if isinstance(node.op, ast.MatMult):
                return self.matmul(left, right)
            if isinstance(node.op, ast.Pow):
                return left
            return self.elementwise(left, right)
        if isinstance(node, ast.Call):
            return self.call(node, operands)
        return _OPAQUE

    def tie(self, a: int, b: int) -> None:
        self.dims.union(a, b)
        self.dims.mark_general(a)

    def matmul(self, left, right):
        if left is None or right is None:
            for side in (left, right):
                if side is not None:
                    self.dims.mark_general(side[0])
                    self.dims.mark_general(side[1])
            return _OPAQUE
        self.tie(left[1], right[0])
        for d in (left[0], right[1]):
            if not self.dims.is_one(d):
                self.dims.mark_general(d)
        return (left[0], right[1])

    def elementwise(self, left, right):
        if left is None or right is None:
            if (left or right) is not None:
                self.pending.append((left or right, None))
            return _OPAQUE
        self.pending.append((left, right))
        return left if self.dims.is_general(left[0]) or self.dims.is_general(left[1]) \
            else right

    def call(self, node: ast.Call, operands: list):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        op = CALLS.get(name)
        if op is None:
            return _OPAQUE
        if op.syntax.arguments == "sizes":
            sizes = [a.id if isinstance(a, ast.Name) else getattr(a, "value", None)
                     for a in node.args]
            if not sizes or any(s is None or isinstance(s, bool) for s in sizes):
                return _OPAQUE
            rows = self.dimension(sizes[0])
            cols = rows if name == "eye" else (self.dimension(sizes[1]) if len(sizes) > 1
                                               else self.dims.one)
            return (rows, cols)
        if op.syntax.arguments == "einsum":
            return self.einsum(node, operands)
        if not operands:
            return _OPAQUE
        first = operands[0]
        has_axis = len(node.args) > 1 or any(k.arg == "axis" and not (
            isinstance(k.value, ast.Constant) and k.value.value is None) for k in node.keywords)
        if op.function is not None or name in SAME_SHAPE:
            if len(operands) > 1:
                return self.elementwise(operands[0], operands[1])
            return first
        if op.kind == "elementwise":                    # several operands: maximum(A, B)
            shape = operands[0]
            for other in operands[1:]:
                shape = self.elementwise(shape, other)
            return shape
        if name in SQUARE_TO_SCALAR or name in SQUARE_TO_SAME:
            if first is not None:
                self.tie(first[0], first[1])
            if name in SQUARE_TO_SAME:
                return first
            return (self.dims.one, self.dims.one)
        if name in REDUCTIONS:
            return _OPAQUE if has_axis else (self.dims.one, self.dims.one)
        return _OPAQUE

    def einsum(self, node: ast.Call, operands: list):
        spec = node.args[0] if node.args else None
        if not (isinstance(spec, ast.Constant) and isinstance(spec.value, str)
                and "->" in spec.value):
            return _OPAQUE
        inputs, output = spec.value.split("->")
        letters: dict[str, int] = {}
        for subscripts, shape in zip(inputs.split(","), operands):
            if shape is None or len(subscripts) != 2:
                continue
            for letter, d in zip(subscripts, shape):
                if letter in letters:
                    self.tie(letters[letter], d)
                else:
                    letters[letter] = d
                    self.dims.mark_general(d)
        out = [letters.get(letter) for letter in output]
        if None in out:
            return _OPAQUE
        out += [self.dims.one] * (2 - len(out))
        return tuple(out[:2])

    # -- broadcasting, settled once the ties are known ------------------------------------------
    def settle(self) -> None:
        """Tie elementwise operands axis by axis where broadcasting leaves no choice, until
        nothing changes; what is still open is ambiguous."""
        changed = True
        while changed:
            changed = False
            for left, right in self.pending:
                if right is None:
                    continue
                for a, b in zip(left, right):
                    if self.dims.find(a) == self.dims.find(b):
                        continue
                    ga, gb = self.dims.is_general(a), self.dims.is_general(b)
                    if ga and gb:
                        changed |= self.dims.union(a, b)
        for left, right in self.pending:
            for side, other in ((left, right), (right, left)):
                if side is None:
                    continue
                for d in side:
                    if not (self.dims.is_general(d) or self.dims.is_one(d)):
                        self.ambiguous(d, side, other)
        for name in self.order:
            for d in self.shapes[name]:
                if not (self.dims.is_general(d) or self.dims.is_one(d)):
                    self.ambiguous(d, self.shapes[name], None)
        self.refuse_free_columns()

    def refuse_free_columns(self) -> None:
        """A variable's second dimension tied to nothing else (``A @ x``: x's columns appear
        only in the result) could be 1: is x a vector or a matrix? Refused, unless its letter
        said (``infer_kinds``). A free first dimension is read as a size: a row would be
        written x.T."""
        slots: dict[int, int] = {}
        for rows, cols in self.shapes.values():
            for d in {self.dims.find(rows), self.dims.find(cols)}:
                slots[d] = slots.get(d, 0) + 1
        for d in self.by_name.values():
            slots[self.dims.find(d)] = slots.get(self.dims.find(d), 0) + 1
        kinds = {self.dims.find(d) for d in self.by_kind}
        for name in self.order:
            rows, cols = (self.dims.find(d) for d in self.shapes[name])
            if (self.dims.value[cols] is None and cols not in kinds and slots[cols] == 1
                    and cols != rows):
                first = (self.spell((rows, rows)) or ("n",))[0]
                other = next(c for c in ("m", "k", "p", "q", "r")
                             if c != first and c not in self.taken)
                kinds_flag = "--infer-kinds" if SPELLING.get() == "cli" else "infer_kinds=True"
                raise ShapeError(f"the shape of {name!r} is not fixed by its use (a vector or a "
                                 f"matrix?): declare it, e.g. {shape_hint(name, (first,))} (a "
                                 f"vector) or {shape_hint(name, (first, other))} (a matrix), or "
                                 f"read names by their letter with {kinds_flag}")

    def ambiguous(self, d: int, side: tuple, other) -> None:
        """Refuse: name the variable whose shape stays open, and how to declare it."""
        root = self.dims.find(d)
        name = next((n for n in self.order if root in {self.dims.find(x)
                                                       for x in self.shapes[n]}),
                    self.order[0])
        dims = self.spell(other) if other is not None else None
        if dims is not None and dims != ():
            declare = f"declare it, e.g. {shape_hint(name, dims)} (the shape of what it meets)"
        else:
            declare = (f"declare it, e.g. {shape_hint(name, ('n', 'm'))} or "
                       f"{shape_hint(name, ('n',))} or {shape_hint(name, ())}")
        kinds = "--infer-kinds" if SPELLING.get() == "cli" else "infer_kinds=True"
        raise ShapeError(f"the shape of {name!r} is not fixed by its use (a scalar, a vector or a "
                         f"matrix?): {declare}, or read names by their letter with {kinds}")

    # -- naming ---------------------------------------------------------------------------------
    def result(self) -> dict[str, tuple]:
        names: dict[int, object] = {}
        counter = 0
        out = {}
        for var in self.order:
            rows, cols = self.shapes[var]
            for d in (rows, cols):
                root = self.dims.find(d)
                if root in names or self.dims.value[root] is not None:
                    continue
                counter += 1
                while f"n{counter}" in self.taken:
                    counter += 1
                names[root] = f"n{counter}"
            out[var] = self.spell((rows, cols), names)
        return out

    def spell(self, shape: tuple, names: dict | None = None) -> tuple | None:
        spelled = []
        for d in shape:
            root = self.dims.find(d)
            value = self.dims.value[root] if self.dims.value[root] is not None else \
                (names or {}).get(root)
            if value is None:
                return None
            spelled.append(value)
        if spelled[1] == 1:
            return () if spelled[0] == 1 else (spelled[0],)
        return tuple(spelled)
