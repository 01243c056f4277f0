"""The web page's menu of examples: the seed notes' derivations, Cookbook identities, ML losses.

Contract: ``EXAMPLES`` is a tuple of ``Example`` s (a group, a title, a ``PageState``), in menu
order; ``menu()`` gives them as the page reads them (group, title and the URL query that loads
the example). Every example derives without error and passes its numeric check (a test runs
them all). The seed notes' examples are those of ``examples/``; the Cookbook's carry the book's
equation number (Petersen & Pedersen, The Matrix Cookbook, November 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import PageState


@dataclass(frozen=True)
class Example:
    """One entry of the menu."""

    group: str
    title: str
    state: PageState


def _example(group: str, title: str, expr: str, wrt: str, shapes: str, domains: str = "",
             derive: str = "grad") -> Example:
    """An example from the command line's spellings: ``wrt="W,b"``, ``shapes="W=n,d X=d,m"``."""
    return Example(group, title, PageState.from_params({
        "expr": expr, "wrt": [wrt], "derive": derive, "shape": shapes.split(),
        "domain": domains.split()}))


SEEDS, COOKBOOK, ML, SECOND = ("Seed notes", "Matrix Cookbook", "Machine-learning losses",
                               "Jacobians and Hessians")

EXAMPLES: tuple[Example, ...] = (
    _example(SEEDS, "000 — a linear layer, |y - tanh(W x + b)|",
             "sum(abs(y - tanh(W @ x + b)))", "W,x", "W=n,d x=d b=n y=n"),
    _example(SEEDS, "001 — a matrix product D = W X", "W @ X", "W,X", "W=5,10 X=10,3"),
    _example(SEEDS, "002 — a three-layer network, examples as columns",
             "sum((sigmoid(W3 @ tanh(W2 @ tanh(W1 @ X + b1) + b2) + b3) - Y) ** 2) / m",
             "W1,b1,W2,b2,W3,b3",
             "X=n,m Y=1,m W1=m1,n b1=m1 W2=m2,m1 b2=m2 W3=1,m2 b3=1"),
    _example(SEEDS, "003 — Z = A B in index notation", "A @ B", "A,B", "A=m,k B=k,n"),
    _example(SEEDS, "004 — a ReLU network with a softmax output, examples as rows",
             "sum((softmax(relu(relu(X @ W1) @ W2) @ W3, axis=1) - Ylabel) ** 2) / m",
             "W3,W2,W1", "X=m,2 Ylabel=m,2 W1=2,2 W2=2,2 W3=2,2"),
    _example(COOKBOOK, "(49) det(X)", "det(X)", "X", "X=n,n", "X=invertible"),
    _example(COOKBOOK, "(57) log det(X)", "logdet(X)", "X", "X=n,n", "X=invertible"),
    _example(COOKBOOK, "(61) aᵀ X⁻¹ b", "a.T @ inv(X) @ b", "X", "a=n X=n,n b=n",
             "X=invertible"),
    _example(COOKBOOK, "(70) aᵀ X b", "a.T @ X @ b", "X", "a=n X=n,n b=n"),
    _example(COOKBOOK, "(81) xᵀ B x", "x.T @ B @ x", "x", "x=n B=n,n"),
    _example(COOKBOOK, "(101) tr(A X B)", "trace(A @ X @ B)", "X", "A=n,n X=n,n B=n,n"),
    _example(COOKBOOK, "(108) tr(Xᵀ B X)", "trace(X.T @ B @ X)", "X", "X=n,n B=n,n"),
    _example(COOKBOOK, "(119) tr((A X B + C)(A X B + C)ᵀ)",
             "trace((A @ X @ B + C) @ (A @ X @ B + C).T)", "X", "A=n,n X=n,n B=n,n C=n,n"),
    _example(COOKBOOK, "(129) ‖x - a‖₂", "norm(x - a)", "x", "x=n a=n"),
    _example(ML, "least squares, ‖X w - y‖² / m", "sum((X @ w - y) ** 2) / m", "w",
             "X=m,d w=d y=m"),
    _example(ML, "ridge regression", "sum((X @ w - y) ** 2) + lam * sum(w ** 2)", "w",
             "X=m,d w=d y=m lam=", "lam=positive"),
    _example(ML, "logistic regression", "sum(softplus(X @ w) - y * (X @ w)) / m", "w",
             "X=m,d w=d y=m"),
    _example(ML, "softmax cross-entropy", "-sum(p * log(softmax(z)))", "z", "z=c p=c",
             "p=probability"),
    _example(ML, "a tanh layer, squared error over a batch",
             "sum((tanh(W @ X + b) - Y) ** 2) / m", "W,b", "W=n,d X=d,m b=n Y=n,m"),
    _example(ML, "a Gaussian's negative log-likelihood",
             "logdet(S) + trace(inv(S) @ (X - mu) @ (X - mu).T) / m", "S,mu",
             "S=d,d X=d,m mu=d", "S=spd"),
    _example(SECOND, "Hessian of xᵀ A x", "x.T @ A @ x", "x", "x=n A=n,n", derive="hessian"),
    _example(SECOND, "Hessian of logistic regression", "sum(softplus(X @ w) - y * (X @ w))",
             "w", "X=m,d w=d y=m", derive="hessian"),
    _example(SECOND, "Hessian of tr(Xᵀ A X): an index tensor and its Kronecker form",
             "trace(X.T @ A @ X)", "X", "X=n,n A=n,n", derive="hessian"),
    _example(SECOND, "Jacobian of tanh(A x)", "tanh(A @ x)", "x", "A=m,n x=n",
             derive="jacobian"),
    _example(SECOND, "Hessian-vector product of tr(Xᵀ A X)", "trace(X.T @ A @ X)", "X",
             "X=n,n A=n,n", derive="hvp"),
)


def menu() -> list[dict]:
    """The examples as the page reads them: ``{"group", "title", "query"}`` each.

    >>> menu()[3]["query"]
    'expr=A%20@%20B&wrt=A&wrt=B&shape=A=m,k&shape=B=k,n'
    """
    return [{"group": e.group, "title": e.title, "query": e.state.to_query()} for e in EXAMPLES]
