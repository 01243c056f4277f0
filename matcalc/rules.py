"""Vector-Jacobian rules, derived from index notation — not typed in.

Contract: ``vjp_rule(node, p)`` returns the rule giving the contribution of ``node``'s upstream
gradient G to the gradient of its operand ``p``. The rule is derived once per operation, operand
position and shape pattern, and cached:

1. entry (i, j) of the operation in index notation (``index.lower``), e.g.
   Z_ij = sum_q A_iq B_qj;
2. the objective S = sum_ij G_ij Z_ij;
3. its derivative with respect to one entry X_kl of the operand, by ``sympy.diff`` (which gives
   Kronecker deltas, and the elementwise derivatives of functions);
4. the deltas summed away (``Term.eliminate_deltas``), e.g. sum_j G_kj B_lj;
5. the remaining contraction collapsed into matrix form (``collapse``), e.g. G @ B.T.

The rule is kept as a template over placeholder variables with canonical dimensions; applying it
substitutes the actual upstream gradient, operands and dimensions. Everything about an operation
(its index form, a hand-written derivative, the recognition of its own value, its rule kind)
comes from its stanza in ``matcalc.ops``; ``RULE_KINDS`` is the view node class -> kind.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass, field
from types import MappingProxyType

import sympy
from sympy import IndexedBase

from .collapse import collapse
from .dims import is_one
from .errors import UnsupportedError
from .expr import Add, Eye, Node, Sub, Var, add, contains, substitute, zeros
from .index import (Fresh, entry, factor_indices, index_for, lower, pointwise_node,
                    sum_inner_deltas, summation, to_terms)
from .ops import OPERATIONS, operation_of
from .version import __version__

#: The kind of each node class's rule (linear, bilinear, ...): a view of the registry.
RULE_KINDS = MappingProxyType({op.node: op.kind for op in OPERATIONS
                               if op.node is not None and op.kind is not None})

_I, _J, _K, _L = sympy.symbols("i j k l", integer=True)


@dataclass(frozen=True)
class Rule:
    """One derived vector-Jacobian rule, with the record of how it was derived."""

    op: str
    position: int
    kind: str
    template: Node                  # matrix form, over the placeholders below
    placeholders: tuple             # (G, operand 0, operand 1, ...)
    canonical: tuple                # canonical dimension symbols D0, D1, ...
    entry: sympy.Expr               # Z_ij in index notation
    objective: sympy.Expr           # sum_ij G_ij Z_ij
    derivative: sympy.Expr          # d objective / d X_kl (with deltas)
    reduced: tuple                  # the terms with the deltas summed away
    wrt: sympy.Expr                 # X_kl
    log: tuple = field(default=())  # collapse steps

    # Kept between processes (DiskCache), the index-notation record is its own pickle, read only
    # when something looks at it (the steps): rebuilding its sums imports a large part of SymPy
    # (sympy.tensor, for Add) that a derivation alone never needs.
    def __reduce__(self):
        record = pickle.dumps(tuple(getattr(self, f) for f in _RECORD),
                              protocol=pickle.HIGHEST_PROTOCOL)
        return (_stored_rule, (tuple(getattr(self, f) for f in _KEPT), record))

    def __getattr__(self, name):       # only for a field not yet read back from the record
        record = self.__dict__.get("_record")
        if name not in _RECORD or record is None:
            raise AttributeError(name)
        for field_name, value in zip(_RECORD, pickle.loads(record)):
            object.__setattr__(self, field_name, value)
        object.__setattr__(self, "_record", None)
        return self.__dict__[name]


_RECORD = ("entry", "objective", "derivative", "reduced", "wrt")
_KEPT = ("op", "position", "kind", "template", "placeholders", "canonical", "log")


def _stored_rule(kept: tuple, record: bytes) -> Rule:
    """A rule read back from the disk cache, its record still a pickle (see Rule.__reduce__)."""
    rule = object.__new__(Rule)
    for name, value in zip(_KEPT, kept):
        object.__setattr__(rule, name, value)
    object.__setattr__(rule, "_record", record)
    return rule


def _canonical_map(node: Node) -> dict:
    """Actual dimension -> canonical symbol D0, D1, ... in order of appearance (1 stays 1)."""
    mapping: dict = {}
    for d in [d for a in node.args for d in a.shape] + list(node.shape):
        if not is_one(d) and d not in mapping:
            mapping[d] = sympy.Symbol(f"D{len(mapping)}", integer=True, positive=True)
    return mapping


def _canonical_params(params: tuple, mapping: dict) -> tuple:
    return tuple(p.xreplace(mapping) if isinstance(p, sympy.Basic) else p for p in params)


def vjp_rule(node: Node, position: int) -> tuple[Rule, dict]:
    """The rule for operand ``position`` of ``node``, and the map from canonical to actual dims."""
    mapping = _canonical_map(node)
    key = (type(node), _canonical_params(node.params, mapping),
           tuple(tuple(d.xreplace(mapping) for d in a.shape) for a in node.args), position)
    rule = _derive(key, node, position, tuple(mapping.items()))
    inverse = {rule.canonical[n]: actual for n, actual in enumerate(mapping)}
    return rule, inverse


_CACHE: dict = {}


def _derive(key, node: Node, position: int, mapping_items: tuple) -> Rule:
    rule = _CACHE.get(key)
    if rule is None:
        rule = DISK.load(key)
        if rule is None:
            rule = derive_rule(node, position, dict(mapping_items))
            DISK.store(key, rule)
        _CACHE[key] = rule
    return rule


# ---------------------------------------------------------------------------------------------
# Derived rules kept between processes
# ---------------------------------------------------------------------------------------------

#: The modules whose text determines the derived rules: every module the derivation reads (a
#: change to any of them starts a new cache).
RULE_SOURCES = ("errors.py", "dims.py", "constants.py", "expr.py", "notation.py", "index.py",
                "collapse.py", "rules.py", "version.py", "ops")


def source_hash() -> str:
    """A digest of matcalc's version, the rule sources, SymPy's version and Python's.

    >>> len(source_hash())
    16
    """
    digest = hashlib.sha256(f"{__version__} {sympy.__version__} {sys.version_info[:2]}"
                            .encode())
    here = os.path.dirname(os.path.abspath(__file__))
    for name in RULE_SOURCES:
        path = os.path.join(here, name)
        files = ([os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".py")]
                 if os.path.isdir(path) else [path])
        for file in files:
            digest.update(os.path.relpath(file, here).encode() + b"\0")
            with open(file, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def default_directory() -> str:
    """``$XDG_CACHE_HOME/matcalc/rules-VERSION-HASH`` (``~/.cache`` without XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "matcalc", f"rules-{__version__}-{source_hash()}")


class DiskCache:
    """Derived rules as files in a user cache directory, one per rule, written at first use.

    The rules in it are made by ``derive_rule`` itself, never typed in; the directory's name
    holds matcalc's version and a hash of the sources that derive them, so an edited or upgraded
    matcalc starts afresh. Anything amiss — no home, a read-only or foreign directory, a damaged
    file — means no cache, silently: the rule is derived as if the cache were not there. Only a
    directory owned by this user and writable by no one else is read (the files are pickles).
    """

    def __init__(self, directory: str | None = None):
        self._directory = directory
        self._ready: bool | None = None       # None: not tried yet

    @property
    def directory(self) -> str | None:
        if self._directory is None:
            try:
                self._directory = default_directory()
            except (OSError, ValueError):      # no home directory, unreadable sources
                self._ready = False
        return self._directory

    def usable(self) -> bool:
        if self._ready is None:
            self._ready = self._prepare()
        return self._ready

    def _prepare(self) -> bool:
        directory = self.directory
        if directory is None:
            return False
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            info = os.stat(directory)
        except OSError:
            return False
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
            return False
        return os.access(directory, os.R_OK | os.W_OK | os.X_OK)

    def path(self, key) -> str:
        """The file of one rule: named by a digest of the key's text (the key is kept inside
        and compared on reading, so two keys that print alike cannot be confused)."""
        cls, params, shapes, position = key
        text = f"{cls.__module__}.{cls.__qualname__} {sympy.srepr(params)} " \
               f"{sympy.srepr(shapes)} {position}"
        return os.path.join(self.directory, hashlib.sha256(text.encode()).hexdigest()[:32])

    def load(self, key) -> Rule | None:
        """The rule stored for ``key``, or None."""
        if not self.usable():
            return None
        try:
            with open(self.path(key), "rb") as handle:
                stored_key, rule = pickle.load(handle)
        except Exception:          # missing, damaged or from elsewhere: derive it afresh
            return None
        return rule if stored_key == key and isinstance(rule, Rule) else None

    def store(self, key, rule: Rule) -> None:
        """Keep ``rule`` for ``key`` (atomically: a reader sees the whole file or none)."""
        if not self.usable():
            return
        try:
            path = self.path(key)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                pickle.dump((key, rule), out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except Exception:          # full disk, a rule that does not pickle: no cache
            self._ready = False


#: The cache derivations read and write; ``use_disk_cache`` points it elsewhere.
DISK = DiskCache()


def use_disk_cache(directory: str | None) -> DiskCache:
    """Keep derived rules in ``directory`` from now on (None: the default place); returns the
    previous cache. The in-process rules are forgotten, so the next derivation reads the disk."""
    global DISK
    previous, DISK = DISK, DiskCache(directory)
    _CACHE.clear()
    return previous


def derive_rule(node: Node, position: int, mapping: dict) -> Rule:
    """Derive the vector-Jacobian rule for operand ``position`` of ``node`` (uncached)."""
    cls = type(node)
    op = operation_of(node)
    if op is None or op.kind is None:
        raise UnsupportedError(f"no derivative rule for {cls.__name__}")
    placeholders = [Var.make(f"_{p}", tuple(d.xreplace(mapping) for d in a.shape),
                             check_name=False) for p, a in enumerate(node.args)]
    z = node.remake(tuple(placeholders), mapping)
    g = Var.make("_G", z.shape, check_name=False)
    bases = [IndexedBase(f"X{p}") for p in range(len(placeholders))]
    gbase = IndexedBase("G")
    fresh = Fresh()
    i, j = index_for(z.rows, _I), index_for(z.cols, _J)
    z_ij = lower(z, bases, i, j, fresh)
    objective = summation(summation(entry(gbase, z.shape, _I, _J) * z_ij, _I, z.rows),
                          _J, z.cols)
    target = placeholders[position]
    k, l = index_for(target.rows, _K), index_for(target.cols, _L)
    wrt = entry(bases[position], target.shape, _K, _L)
    if op.hand is not None:
        # no finite index form: d Z_ij / d X_kl is given in index form, summed against G_ij
        local = op.hand(z, bases, i, j, k, l, fresh)
        derivative = summation(summation(entry(gbase, z.shape, _I, _J) * local, _I, z.rows),
                               _J, z.cols)
    else:
        derivative = sympy.diff(objective, wrt)
    recorded = derivative           # the record keeps the deltas: the steps printer shows them
    derivative = sum_inner_deltas(derivative)
    if op.recognize is not None:
        derivative = op.recognize(z, bases, derivative, fresh)

    sizes = {_I: z.rows, _J: z.cols, _K: target.rows, _L: target.cols}
    nodes = {gbase: g, **{b: ph for b, ph in zip(bases, placeholders)}}
    nodes.update({b: build(placeholders) for b, build in fresh.opaque_bases.items()})
    log: list[str] = []
    result = None
    reduced = []
    for term in to_terms(derivative):
        term.eliminate_deltas()
        if term.coeff == 0:
            continue
        reduced.append(term.to_sympy())
        sizes.update(term.summed)
        factors = []
        for f in term.factors:
            idx = factor_indices(f)
            shape = tuple(sympy.Integer(1) if x == 0 else sizes[x] for x in idx)
            factors.append((pointwise_node(f, idx, nodes, shape), idx))
        for a, b in term.deltas:
            factors.append((Eye.make(sizes[a]), (a, b)))
        # The upstream gradient first, as the notes write it (G * f'(A), G @ B.T), then plain
        # factors before sums (G * s * (1 - s)).
        factors.sort(key=lambda f: (not contains(f[0], g), isinstance(f[0], (Add, Sub))))
        part = collapse(factors, (k, l), sizes, list(term.summed), term.coeff, log)
        result = part if result is None else add(result, part)
    if result is None:
        result = zeros(*target.shape)
    return Rule(cls.__name__, position, op.kind, result, (g, *placeholders),
                tuple(mapping.values()), z_ij, objective, recorded, tuple(reduced), wrt,
                tuple(log))


def apply_rule(rule: Rule, node: Node, adjoint: Node, inverse: dict) -> Node:
    """The rule's contribution for this ``node`` and upstream gradient ``adjoint``."""
    node_map = {rule.placeholders[0]: adjoint}
    for ph, actual in zip(rule.placeholders[1:], node.args):
        node_map[ph] = actual
    return substitute([rule.template], node_map, inverse)[0]
