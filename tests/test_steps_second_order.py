"""Step-by-step notes for Jacobians, Hessians and Hessian-vector products.

- a Hessian shows the gradient (part 1), the sweep of the gradient's vector-Jacobian product with
  a symbolic upstream G (part 2), and H = Mᵀ read off M @ G (part 3), ending with the result;
- a Jacobian shows its one sweep with G, and J = Mᵀ; a Hessian-vector product the gradient, the
  gradient of sum(g * v), and the result;
- the parts are the engine's own sweep records, and their names never clash (Z_n, δ_n numbered
  on from part to part, a user's g, G or H respected);
- a result with no matrix form (an index-notation object) is shown in its own notation;
- every format (text, LaTeX, MathML, Markdown, HTML), as for gradients;
- ``matcalc jacobian`` / ``matcalc hessian`` with ``--steps`` and ``--format`` (there is no hvp
  command).
"""

from __future__ import annotations

import re

import pytest

import matcalc as mc
from matcalc import cli
from matcalc.diff import reverse_sweep
from matcalc.jacobian import gradient_of
from matcalc.printing.notes import Note, _LatexNote, formula_text
from matcalc.steps import second_order_steps
from test_steps import array_rows, assert_faithful_mathml, assert_self_contained

A = mc.Matrix("A", "n", "n")
W = mc.Matrix("W", "m", "n")
X = mc.Matrix("X", "n", "n")
x = mc.Vector("x", "n")
QUADRATIC = x.T @ A @ x

#: A note's internal keys (each sweep's, with its prefix, and the note's own): never printed.
KEYS = re.compile(r"(?<![A-Za-z0-9])_(?:[0-9]_)?(?:[naoq][0-9]+|f\b)")


def equation(steps: Note, eq) -> str:
    return " = ".join(formula_text(f, steps.names) for f in (eq.lhs, *eq.rhs))


def lines(steps: Note, block) -> list[tuple[str, str]]:
    return [(eq.label, equation(steps, eq)) for eq in block.equations]


def flat(text: str) -> str:
    """The text with its line wrapping undone."""
    return " ".join(text.split())


def headings(steps: Note) -> list[str]:
    return [b.heading[0] for b in steps.blocks]


def part(steps: Note, n: int) -> list:
    """The blocks of part n, after its heading block."""
    return [b for b in steps.blocks if b.heading[0].startswith(f"Part {n}, ")]


# ---------------------------------------------------------------------------------------------
# Hessian
# ---------------------------------------------------------------------------------------------

def test_hessian_of_a_quadratic_form_in_three_parts():
    res = mc.hessian(QUADRATIC, x)
    steps = res.steps()
    assert steps.title == "Hessian of x.T @ A @ x with respect to x, step by step"
    assert [h for h in headings(steps) if "—" in h] == [
        "Part 1 — the gradient", "Part 2 — differentiating the gradient",
        "Part 3 — reading the Hessian off"]
    # part 1: the gradient, as for any gradient
    assert ("gradient", "∂f/∂x = ∂f/∂x [step 2] + ∂f/∂x [step 4] = Z_2.T + δ_1.T = (A + A.T) @ x"
            ) in lines(steps, part(steps, 1)[-1])
    # part 2: g differentiated as a vector-Jacobian product with a symbolic G of x's shape
    text = steps.text()
    two = text[text.index("Part 2 —"):text.index("Part 3 —")]
    assert "the gradient            g = ∂f/∂x = (A + A.T) @ x" in two
    assert "Z_3 = A + A.T" in two and "g = Z_3 @ x" in two
    assert "what is differentiated  y = Σ_i G_i g_i" in two
    assert "Part 2, step 1: g = Z_3 @ x, towards x" in two
    assert "chain rule              ∂y/∂x_k = Σ_i G_i ∂g_i/∂x_k" in two
    assert "result                  ∂y/∂x = Z_3.T @ G" in two
    assert "all ones" not in two and "no G given" not in two      # G stands for any vector
    # part 3: M read off M @ G, H = Mᵀ, simplified: the matrix the engine found
    last = steps.blocks[-1]
    assert lines(steps, last) == [
        ("linear in G", "∂y/∂x = (A.T + A) @ G"),
        ("Hessian", "H = ∂g/∂x = (A.T + A).T = A + A.T"),
    ]
    assert "H_kl = ∂g_k/∂x_l, numerator layout, n×n" in flat(text)
    assert formula_text(last.equations[-1].rhs[-1], steps.names) == str(res.matrix) == "A + A.T"
    assert text.rstrip().splitlines()[-3].endswith("= A + A.T")


def test_hessian_of_least_squares_and_of_logsumexp():
    y = mc.Vector("y", "m")
    res = mc.hessian(mc.sum((W @ x - y) ** 2), x)
    steps = res.steps()
    assert equation(steps, steps.blocks[-1].equations[-1]).endswith(f"= {res.matrix}")
    assert str(res.matrix) == "2 * (W.T @ W)"
    res = mc.hessian(mc.logsumexp(x), x)
    steps = res.steps()
    final = equation(steps, steps.blocks[-1].equations[-1])
    assert final.endswith("= diag(softmax(x)) - softmax(x) @ softmax(x).T")


def test_part_one_is_the_gradients_own_derivation():
    steps = mc.hessian(QUADRATIC, x).steps()
    gradient = mc.grad(QUADRATIC, x).steps()
    ours = part(steps, 1)
    assert len(ours) == len(gradient.blocks)
    for mine, theirs in zip(ours, gradient.blocks):
        assert lines(steps, mine) == lines(gradient, theirs)
        assert mine.source is theirs.source or mine.source.node is theirs.source.node
    assert ours[1].heading[0] == "Part 1, step 1: "


def test_part_two_is_the_engines_sweep_of_the_gradient():
    res = mc.hessian(QUADRATIC, x)
    steps = res.steps()
    g = gradient_of(QUADRATIC, x)
    G = mc.Vector("G", "n")
    record = reverse_sweep(g, [x], G).steps
    shown = [b.source for b in part(steps, 2) if b.source is not None]
    assert [(s.node, s.position) for s in shown] == [(s.node, s.position) for s in record]
    assert [b.rule for b in part(steps, 2) if b.rule] == ["MatMul, operand 1 (bilinear)"]


def test_the_two_sweeps_names_do_not_clash():
    W2 = mc.Matrix("W", "n", "n")
    res = mc.hessian(mc.sum(mc.tanh(W2 @ x) ** 2), x)
    steps = res.steps()
    text = steps.text()
    defined = [formula_text(eq.lhs, steps.names) for b in steps.blocks
               if b.heading[0].endswith("the expression") for eq in b.equations]
    assert len(defined) == len(set(defined)) > 4                    # each Z_n defined once
    # numbered on: part 1 has Z_1 to Z_3, part 2 (with g = 2 * Z_10) Z_4 to Z_10
    assert [d for d in defined if d.startswith("Z_")] == [f"Z_{n}" for n in range(1, 11)]
    assert defined[defined.index("Z_10") + 1] == "g"
    one = {n for b in part(steps, 1) for n in re.findall(r"\b[Zδ]_\d+", str(lines(steps, b)))}
    two = {n for b in part(steps, 2) for n in re.findall(r"\b[Zδ]_\d+", str(lines(steps, b)))}
    assert one and two and not one & two
    for rendering in (text, steps.latex(), steps.markdown()):
        assert KEYS.findall(rendering) == []


def test_a_users_g_G_and_H_are_left_alone():
    g, G, H = mc.Vector("g", "n"), mc.Matrix("G", "n", "n"), mc.Scalar("H")
    res = mc.hessian(x.T @ G @ x + mc.sum(g * x) * H, x)
    steps = res.steps()
    text = flat(steps.text())
    assert "g_1 = ∂f/∂x = H * g + (G + G.T) @ x" in text           # the gradient, renamed
    assert "y = sum(G_1 * g_1) is differentiated" in text          # the upstream, renamed
    assert "y = Σ_i (G_1)_i (g_1)_i" in text
    assert lines(steps, steps.blocks[-1]) == [
        ("linear in G_1", "∂y/∂x = (G.T + G) @ G_1"),
        ("Hessian", "H_1 = ∂g_1/∂x = (G.T + G).T = G + G.T"),
    ]
    assert "as ∂y/∂x = Jᵀ G_1;" in text


# ---------------------------------------------------------------------------------------------
# Jacobian
# ---------------------------------------------------------------------------------------------

def test_jacobian_of_a_layer():
    res = mc.jacobian(mc.tanh(W @ x), x)
    steps = res.steps()
    assert steps.title == "Jacobian of tanh(W @ x) with respect to x, step by step"
    assert [h for h in headings(steps) if "—" in h] == [
        "Part 1 — the vector-Jacobian product", "Part 2 — reading the Jacobian off"]
    text = steps.text()
    assert "Z_1 = W @ x" in text and "f = tanh(Z_1)" in text
    assert "what is differentiated  y = Σ_i G_i f_i" in text
    assert "δ_1 = ∂y/∂Z_1 = G * (1 - tanh(Z_1) ** 2)" in text
    assert "no G given" not in text
    assert lines(steps, steps.blocks[-1]) == [
        ("linear in G", "∂y/∂x = W.T @ (G * (1 - tanh(W @ x) ** 2)) = "
                        "W.T @ diag(1 - tanh(W @ x) ** 2) @ G"),
        ("Jacobian", "J = ∂f/∂x = (W.T @ diag(1 - tanh(W @ x) ** 2)).T = "
                     "diag(1 - tanh(W @ x) ** 2) @ W"),
    ]
    assert str(res.matrix) == "diag(1 - tanh(W @ x) ** 2) @ W"
    assert "J_kl = ∂f_k/∂x_l, numerator layout, m×n" in flat(text)
    sources = [b.source for b in steps.blocks if b.source is not None]
    assert [s.rule.op for s in sources] == ["Apply", "MatMul"]


# ---------------------------------------------------------------------------------------------
# Hessian-vector product
# ---------------------------------------------------------------------------------------------

def test_hessian_vector_product():
    res = mc.hvp(QUADRATIC, x)
    steps = res.steps()
    assert steps.title == ("Hessian-vector product of x.T @ A @ x with respect to x, along v, "
                           "step by step")
    assert [h for h in headings(steps) if "—" in h] == [
        "Part 1 — the gradient", "Part 2 — differentiating sum(g * v)"]
    text = steps.text()
    two = text[text.index("Part 2 —"):text.index("\nThe result")]
    assert "g = Z_3 @ x" in two and "Z_4 = g * v" in two and "h = sum(Z_4)" in two
    assert "δ_g = ∂h/∂g = δ_4 * v" in two                          # g's adjoint, by its name
    assert "∂h/∂x = Z_3.T @ δ_g = (A.T + A) @ v" in two
    assert headings(steps)[-1] == "The result"
    assert lines(steps, steps.blocks[-1]) == [
        ("Hessian-vector product", "H v = ∂h/∂x = (A.T + A) @ v")]
    assert str(res.matrix) == "(A.T + A) @ v"


def test_hessian_vector_product_for_a_matrix_variable():
    res = mc.hvp(mc.trace(X.T @ A @ X), X)
    steps = res.steps()
    final = equation(steps, steps.blocks[-1].equations[-1])
    assert final == f"H v = ∂h/∂X = {res.matrix}"


# ---------------------------------------------------------------------------------------------
# A result with no matrix form
# ---------------------------------------------------------------------------------------------

class IndexForm:
    """A stand-in for a derivative with no matrix form: it writes itself, in index notation."""

    def to_text(self) -> str:
        return "∂g_ij/∂X_kl = A_ik δ_jl + A_li δ_jk"

    def to_latex(self) -> str:
        return (r"\frac{\partial g_{ij}}{\partial X_{kl}} = A_{ik} \delta_{jl} "
                r"+ A_{li} \delta_{jk}")


class EinsumOnly:
    """A stand-in that writes only its right side."""

    def to_text(self) -> str:
        return 'einsum("ik,jl->ijkl", A, eye(n))'

    def to_latex(self) -> str:
        return r"A_{ik} \delta_{jl}"


def test_a_result_with_no_matrix_form_is_shown_in_its_own_notation():
    f = mc.trace(X.T @ A @ X)
    steps = second_order_steps("hessian", f, X, IndexForm())
    last = steps.blocks[-1]
    assert lines(steps, last) == [
        ("vector-Jacobian product", "∂y/∂X = (A.T + A) @ G"),
        ("Hessian", "H = ∂g/∂X"),
        ("index form", "∂g_ij/∂X_kl = A_ik δ_jl + A_li δ_jk"),
    ]
    latex = _LatexNote(steps).array(last)
    assert (r"\frac{\partial g_{ij}}{\partial X_{kl}} & = & A_{ik} \delta_{jl} + A_{li} "
            r"\delta_{jk} & \text{index form}") in latex
    assert_faithful_mathml(re.findall(r"<math.*?</math>", steps.mathml(), flags=re.S)[-1],
                           rows=array_rows(latex))
    steps = second_order_steps("jacobian", A.T @ X, X, EinsumOnly())
    assert lines(steps, steps.blocks[-1])[-1] == ("index form",
                                                  'J = einsum("ik,jl->ijkl", A, eye(n))')
    assert r"J & = & A_{ik} \delta_{jl}" in steps.latex()
    steps = second_order_steps("hvp", f, X, IndexForm(), mc.Matrix("v", "n", "n"))
    assert lines(steps, steps.blocks[-1])[-1][1] == "∂g_ij/∂X_kl = A_ik δ_jl + A_li δ_jk"


def test_the_api_shows_a_matrix_variables_hessian_in_index_form():
    res = mc.hessian(mc.trace(X.T @ A @ X), X)
    steps = res.steps()
    if isinstance(res.gradients[0], mc.expr.Node):
        assert equation(steps, steps.blocks[-1].equations[-1]).endswith(str(res.gradients[0]))
    else:
        assert lines(steps, steps.blocks[-1])[-1] == ("index form",
                                                      f"H = {res.gradients[0].to_text()}")
    for math in re.findall(r"<math.*?</math>", steps.mathml(), flags=re.S):
        assert_faithful_mathml(math)


def test_an_unknown_kind_is_an_error():
    with pytest.raises(mc.MatcalcError, match="jacobian, hessian or hvp"):
        second_order_steps("laplacian", QUADRATIC, x, A)


# ---------------------------------------------------------------------------------------------
# Every format
# ---------------------------------------------------------------------------------------------

CASES = [
    ("jacobian", lambda: mc.jacobian(mc.tanh(W @ x), x)),
    ("jacobian softmax", lambda: mc.jacobian(mc.softmax(x), x)),
    ("hessian", lambda: mc.hessian(QUADRATIC, x)),
    ("hessian tanh", lambda: mc.hessian(mc.sum(mc.tanh(W @ x) ** 2), x)),
    ("hvp", lambda: mc.hvp(QUADRATIC, x)),
    ("hvp matrix", lambda: mc.hvp(mc.trace(X.T @ A @ X), X)),
]


@pytest.mark.parametrize("name,build", CASES, ids=[c[0] for c in CASES])
def test_every_format(name, build):
    res = build()
    steps = res.steps()
    assert steps.text() == res.steps().text() == str(steps)                 # deterministic
    outputs = {fmt: steps.render(fmt) for fmt in ("text", "latex", "mathml", "markdown", "html")}
    for rendering in outputs.values():
        assert rendering and KEYS.findall(rendering) == []

    # MathML: one <math> per block with equations, each faithful, no row lost
    maths = re.findall(r"<math.*?</math>", outputs["mathml"], flags=re.S)
    arrays = [blk for blk in steps.blocks if blk.equations]
    assert len(maths) == len(arrays)
    writer = _LatexNote(steps)
    for math, blk in zip(maths, arrays):
        assert_faithful_mathml(math, rows=array_rows(writer.array(blk)))
    assert outputs["mathml"].count("<!--") == len(steps.blocks)
    assert "<!-- Part 1 — " in outputs["mathml"]

    # LaTeX: a standalone ASCII document, balanced
    doc = outputs["latex"]
    assert doc.startswith(r"\documentclass{article}") and doc.isascii()
    assert doc.count("{") - doc.count(r"\{") == doc.count("}") - doc.count(r"\}")
    assert doc.count(r"\begin{") == doc.count(r"\end{")
    assert r"\subsection*{Part 1 - " in doc

    # Markdown and HTML
    md = outputs["markdown"]
    assert md.startswith(f"# {steps.title.split(' of ')[0]} of") and "## Part 1 — " in md
    for latex in re.findall(r"^\$\$\n(.*?)\n\$\$$", md, flags=re.S | re.M):
        assert_faithful_mathml(re.findall(r"<math.*?</math>", mc.printing.notes.math_html(
            [latex.replace("\n", " ")]), flags=re.S)[0])
    assert_self_contained(outputs["html"])
    for math in re.findall(r"<math.*?</math>", outputs["html"], flags=re.S):
        assert_faithful_mathml(math)

    # the note ends with the result the derivation holds
    final = steps.blocks[-1].equations[-1].rhs[-1]
    assert formula_text(final, steps.names) == str(res.gradients[0])


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------

def run_cli(capsys, argv: list[str]) -> str:
    status = cli.run(argv)
    assert status == 0, capsys.readouterr().err
    return capsys.readouterr().out


def test_cli_hessian_steps(capsys):
    out = run_cli(capsys, ["hessian", "x.T @ A @ x", "--wrt", "x", "--shape", "x=n",
                           "--shape", "A=n,n", "--steps"])
    assert out.startswith("Hessian of x.T @ A @ x with respect to x, step by step")
    assert "Part 2, step 1: g = Z_3 @ x, towards x" in out
    assert "H = ∂g/∂x = (A.T + A).T = A + A.T" in out


def test_cli_jacobian_steps_as_mathml(capsys):
    out = run_cli(capsys, ["jacobian", "tanh(A @ x)", "--wrt", "x", "--shape", "x=n",
                           "--shape", "A=m,n", "--format", "mathml"])
    assert out.startswith("<!-- Part 1 — the vector-Jacobian product -->")
    maths = re.findall(r"<math.*?</math>", out, flags=re.S)
    assert maths
    for math in maths:
        assert_faithful_mathml(math)


def test_cli_hessian_with_respect_to_a_matrix(capsys):
    out = run_cli(capsys, ["hessian", "trace(X.T @ A @ X)", "--wrt", "X", "--shape", "X=n,n",
                           "--shape", "A=n,n", "--steps"])
    assert "Part 3 — reading the Hessian off" in out and "index form" in out
