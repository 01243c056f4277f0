"""The derivation step by step (issue 4): what the steps show, and every format they come in.

- Z = A·B reproduces seed note 003's derivation step for step;
- the blocks are the sweep record, in the user's names (never the rules' placeholders);
- every expression of the core test set (tests/test_expressions.py) is written in every format;
- the MathML is well-formed XML and no LaTeX construct degrades into literal text;
- the LaTeX document compiles (when pdflatex is installed), the HTML is self-contained;
- Jupyter display hooks and the command-line flags.
"""

from __future__ import annotations

import html.parser
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from latex2mathml.converter import convert

import matcalc as mc
from matcalc import cli
from matcalc.printing.notes import Note, _LatexNote, formula_text, latex_text
from test_expressions import CASES

A = mc.Matrix("A", "m", "k")
B = mc.Matrix("B", "k", "n")


def lines(steps: Note, block) -> list[tuple[str, str]]:
    """(label, equation) of each equation of a block, as the text rendering writes them."""
    return [(eq.label, " = ".join(formula_text(f, steps.names) for f in (eq.lhs, *eq.rhs)))
            for eq in block.equations]


# ---------------------------------------------------------------------------------------------
# What the steps show
# ---------------------------------------------------------------------------------------------

def test_matrix_product_matches_seed_003_step_for_step():
    """Seed 003, "Formal derivation": (1) Z_ij = Σ_k a_ik b_kj; ∂y/∂a_kl = Σ_ij ∂y/∂z_ij
    ∂z_ij/∂a_kl; ∂z_ij/∂a_kl is 0 unless i = k, and ∂z_kj/∂a_kl = b_lj; substituting,
    ∂y/∂a_kl = Σ_j ∂y/∂z_kj b_lj = Σ_j G_kj (bᵀ)_jl, a matrix product; ∂y/∂a = G·bᵀ,
    ∂y/∂b = aᵀ·G; and with gradients = None, G is a matrix of ones."""
    res = mc.grad(A @ B, [A, B])
    steps = res.steps()
    setting, to_a, to_b, result = steps.blocks
    assert ("what is differentiated", "y = Σ_ij G_ij Z_ij") in lines(steps, setting)
    assert lines(steps, to_a) == [
        ("index notation", "Z_ij = Σ_k A_ik B_kj"),
        ("chain rule", "∂y/∂A_kl = Σ_ij G_ij ∂Z_ij/∂A_kl"),
        ("entrywise derivative", "∂Z_ij/∂A_kl = Σ_p δ_ik δ_lp B_pj"),
        ("deltas summed", "∂y/∂A_kl = Σ_j G_kj B_lj"),
        ("matrix form", "∂y/∂A_kl = Σ_j G_kj (Bᵀ)_jl = (G @ B.T)_kl"),
        ("result", "∂y/∂A = G @ B.T"),
    ]
    assert lines(steps, to_b) == [
        ("index notation", "Z_ij = Σ_k A_ik B_kj"),
        ("chain rule", "∂y/∂B_kl = Σ_ij G_ij ∂Z_ij/∂B_kl"),
        ("entrywise derivative", "∂Z_ij/∂B_kl = Σ_p δ_jl δ_kp A_ip"),
        ("deltas summed", "∂y/∂B_kl = Σ_i G_il A_ik"),
        ("matrix form", "∂y/∂B_kl = Σ_i (Aᵀ)_ki G_il = (A.T @ G)_kl"),
        ("result", "∂y/∂B = A.T @ G"),
    ]
    text = steps.text()
    assert "summing δ_ik over i sets i = k; summing δ_lp over p sets p = l" in text
    assert "(sum over j shared by two factors: a matrix product)" in text
    assert "(rule MatMul, operand 0 (bilinear))" in text
    assert lines(steps, result)[2:] == [("no G given", "∂y/∂A = ones(m, n) @ B.T"),
                                        ("no G given", "∂y/∂B = A.T @ ones(m, n)")]


def test_blocks_are_the_sweep_record_in_order():
    W = mc.Matrix("W", "n", "d"); X = mc.Matrix("X", "d", "m"); b = mc.Vector("b", "n")
    res = mc.grad(mc.sum(mc.tanh(W @ X + b)), [W, b])
    steps = res.steps()
    record = res.record
    assert [blk.source for blk in steps.blocks[1:-1]] == record
    for blk, step in zip(steps.blocks[1:-1], record):
        assert blk.rule == f"{step.rule.op}, operand {step.position} ({step.rule.kind})"
        assert step.rule.log == () or any(eq.label == "matrix form" for eq in blk.equations)
    assert steps.blocks[-1].heading == ("Result",)


def test_the_delta_recursion_of_seed_000_in_the_users_names():
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
    y = mc.Vector("y", "n")
    a = W @ x + b
    res = mc.grad(mc.sum(mc.abs(y - mc.tanh(a))), [W, x, a])
    text = res.steps().text()
    assert "Z_1 = W @ x" in text and "Z_2 = Z_1 + b" in text and "f = sum(Z_5)" in text
    assert "δ_5 = ∂f/∂Z_5 = ones(n)" in text
    assert "δ_4 = ∂f/∂Z_4 = δ_5 * sign(Z_4)" in text               # abs' = sign, elementwise
    assert "δ_2 = ∂f/∂Z_2 = δ_3 * (1 - tanh(Z_2) ** 2)" in text    # f'(a), a Hadamard product
    assert "∂f/∂W = δ_1 @ x.T" in text                               # dL/dW = dL/da x^T
    assert "∂f/∂x = W.T @ δ_1" in text                               # dL/dx = W^T dL/da
    assert "∂f/∂Z_2 = δ_2 = -(sign(y - tanh(W @ x + b)) * (1 - tanh(W @ x + b) ** 2))" in text


def test_a_value_used_twice_gets_its_contributions_summed():
    x = mc.Vector("x", "n")
    S = mc.Matrix("S", "n", "n")
    res = mc.grad(x.T @ S @ x, x)
    text = res.steps().text()
    assert "result, use 1 of 2" in text and "result, use 2 of 2" in text
    assert ("∂f/∂x = ∂f/∂x [step 2] + ∂f/∂x [step 4] = Z_2.T + δ_1.T = (S + S.T) @ x"
            in text)


def test_an_intermediate_adjoint_is_summed_before_it_is_used():
    X = mc.Matrix("X", "n", "n")
    t = mc.tanh(X)
    text = mc.grad(mc.sum(t * t), X).steps().text()
    assert "upstream gradient" in text
    assert "δ_1 = ∂f/∂Z_1 = ∂f/∂Z_1 [step 2] + ∂f/∂Z_1 [step 3] = δ_2 * Z_1 + δ_2 * Z_1" in text
    assert "(Z_2)_ij = (Z_1)_ij (Z_1′)_ij" in text            # the use held fixed is marked
    assert "∂(Z_2)_ij/∂(Z_1)_kl = δ_ik δ_jl (Z_1′)_ij" in text  # not 2 δ_ik δ_jl (Z_1)_ij


PLACEHOLDERS = re.compile(r"\bX[0-9]\b|\b_n[0-9]+|\b_a[0-9]+|\bD[0-9]\b|\b_G\b|\bq[0-9]\b|\b_f\b")


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_steps_use_the_users_names_not_the_rules_placeholders(name, expression, wrt, forms):
    steps = mc.grad(expression, wrt).steps()
    users = {v.name for v in mc.expr.variables([expression])}       # a user may call one X0
    for text in (steps.text(), steps.latex()):
        assert [m for m in PLACEHOLDERS.findall(text) if m not in users] == []
    assert len(steps.blocks) == len(mc.grad(expression, wrt).record) + 2


# ---------------------------------------------------------------------------------------------
# Every format, for every expression of the core set
# ---------------------------------------------------------------------------------------------

KNOWN_WORDS = {"exp", "log", "sin", "cos", "tanh", "det", "tr", "max", "min", "lim"}


def assert_faithful_mathml(mathml: str, rows: int | None = None) -> ET.Element:
    """Well-formed, and nothing left of LaTeX: no backslash command, & or brace as a token,
    no empty mstyle (a lost \\displaystyle), no error element; ``rows`` table rows if given."""
    root = ET.fromstring(mathml)
    for el in root.iter():
        tag = el.tag.split("}")[-1]
        text = el.text or ""
        assert tag != "merror", mathml
        if tag in ("mi", "mn", "mtext", "mo"):
            assert "\\" not in text and "&" not in text, (tag, text)
        if tag in ("mi", "mn", "mtext"):
            assert not re.search(r"[{}^_$#%~]", text), (tag, text)
        if tag == "mi":
            assert len(text) == 1 or text in KNOWN_WORDS, (tag, text)
        if tag == "mstyle":
            assert len(el) > 0, "an empty mstyle: a LaTeX style command was lost"
    if rows is not None:
        assert len([el for el in root.iter() if el.tag.split("}")[-1] == "mtr"]) == rows
    return root


def array_rows(latex: str) -> int:
    return latex.count(r" \\") + 1


@pytest.mark.parametrize("name,expression,wrt,forms", CASES, ids=[c[0] for c in CASES])
def test_every_format_for_every_case(name, expression, wrt, forms):
    steps = mc.grad(expression, wrt).steps()
    outputs = {fmt: steps.render(fmt) for fmt in ("text", "latex", "mathml", "markdown", "html")}
    assert all(outputs.values())
    assert "Step 1:" in outputs["text"] or not steps.blocks[1:-1]

    # MathML: one <math> per block with equations, each faithful, no row lost
    maths = re.findall(r"<math.*?</math>", outputs["mathml"], flags=re.S)
    arrays = [blk for blk in steps.blocks if blk.equations]
    assert len(maths) == len(arrays)
    writer = _LatexNote(steps)                               # the LaTeX the MathML came from
    for math, blk in zip(maths, arrays):
        assert_faithful_mathml(math, rows=array_rows(writer.array(blk)))

    # LaTeX: a document pdflatex can read: ASCII, balanced braces and environments
    doc = outputs["latex"]
    assert doc.startswith(r"\documentclass{article}") and doc.rstrip().endswith(r"\end{document}")
    assert doc.isascii()
    assert doc.count("{") - doc.count(r"\{") == doc.count("}") - doc.count(r"\}")
    assert doc.count(r"\begin{") == doc.count(r"\end{")
    assert "aligned" not in doc and not re.search(r"(\\\\|\{rcll\})\s*&", doc)

    # Markdown: $$ blocks that convert faithfully
    md = outputs["markdown"]
    blocks = re.findall(r"^\$\$\n(.*?)\n\$\$$", md, flags=re.S | re.M)
    assert len(blocks) == len(arrays) and md.count("$$") == 2 * len(arrays)
    for latex in blocks:
        assert_faithful_mathml(convert(latex), rows=array_rows(latex.replace("\n", " ")))

    # HTML: self-contained, every formula faithful
    page = outputs["html"]
    assert_self_contained(page)
    for math in re.findall(r"<math.*?</math>", page, flags=re.S):
        assert_faithful_mathml(math)


def assert_self_contained(page: str) -> None:
    class Tags(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.urls = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    parser = Tags()
    parser.feed(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert parser.urls == []
    assert "math" in parser.tags and "@import" not in page and "url(" not in page
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/1998/Math/MathML"] * \
        page.count("http://")


def test_mathml_is_one_well_formed_element_per_block():
    mathml = mc.grad(A @ B, A).steps().mathml()
    document = ET.fromstring(f"<notes>{mathml}</notes>")
    assert [el.tag.split("}")[-1] for el in document] == ["math", "math", "math"]
    assert all(el.get("display") == "block" for el in document)


def test_words_inside_text_commands_need_no_escape():
    assert latex_text("a & b_c 50% {x} ~^$#\\") == "a and b c 50 percent (x)  no. /"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_latex_document_compiles(tmp_path):
    W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
    res = mc.grad(mc.sum(mc.sigmoid(W @ x + b) ** 2) / mc.dim("n"), [W, b])
    (tmp_path / "note.tex").write_text(res.steps().latex_document(), encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "note.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "note.pdf").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------
# Operations added since the notes were written render through the same printers
# ---------------------------------------------------------------------------------------------

X = mc.Matrix("X", "n", "n")
H = mc.Matrix("H", "m", "k")
NEW_OPERATIONS = [
    ("det", lambda f: f(X), X), ("logdet", lambda f: f(X), X), ("inv", lambda f: mc.sum(f(X)), X),
    ("norm", lambda f: f(X), X), ("norm1", lambda f: f(X), X),
    ("softmax", lambda f: mc.sum(f(H, axis=1) ** 2), H),
    ("logsumexp", lambda f: mc.sum(f(H, axis=1)), H),
]


@pytest.mark.parametrize("name,build,var", NEW_OPERATIONS, ids=[c[0] for c in NEW_OPERATIONS])
def test_operations_added_later_render_in_every_format(name, build, var):
    function = getattr(mc, name, None)
    if function is None:
        pytest.skip(f"matcalc has no {name} yet")
    try:
        res = mc.grad(build(function), var)
    except mc.MatcalcError as err:
        pytest.skip(f"{name} does not differentiate yet: {err}")
    steps = res.steps()
    for fmt in ("text", "latex", "markdown", "html"):
        assert steps.render(fmt)
    for math in re.findall(r"<math.*?</math>", steps.mathml(), flags=re.S):
        assert_faithful_mathml(math)


# ---------------------------------------------------------------------------------------------
# Jupyter
# ---------------------------------------------------------------------------------------------

def test_a_derivation_displays_as_math():
    res = mc.grad(A @ B, [A, B])
    bundle = res._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/latex", "text/html"}
    assert bundle["text/latex"].startswith("$\\frac{\\partial")
    assert bundle["text/html"].count("<math") == 2
    ET.fromstring(bundle["text/html"])


def test_an_expression_displays_as_math():
    e = (A @ B).T
    assert e._repr_latex_() == "$\\left(A B\\right)^{\\top}$"
    assert_faithful_mathml(re.search(r"<math.*</math>", e._repr_html_(), flags=re.S).group(0))


def test_steps_display_as_html_and_print_as_text():
    steps = mc.grad(A @ B, A).steps()
    assert steps._repr_html_().startswith("<div><style>")
    assert "<math" in steps._repr_html_() and "<script" not in steps._repr_html_()
    assert str(steps) == steps.text()
    assert steps._repr_latex_().startswith("$$\\begin{array}")


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------

MATMUL = ["grad", "A @ B", "--wrt", "A,B", "--shape", "A=m,k", "--shape", "B=k,n"]


def test_cli_steps_as_text(capsys):
    assert cli.run(MATMUL + ["--steps"]) == 0
    out = capsys.readouterr().out
    assert "Step 1: Z = A @ B, towards A" in out and "∂y/∂A = G @ B.T" in out
    assert "d/dA" not in out


@pytest.mark.parametrize("fmt,start", [("latex", r"\documentclass"), ("mathml", "<!--"),
                                       ("markdown", "# Gradient"), ("html", "<!DOCTYPE html>"),
                                       ("text", "Gradient of A @ B")])
def test_cli_format_implies_steps(capsys, fmt, start):
    assert cli.run(MATMUL + ["--format", fmt]) == 0
    assert capsys.readouterr().out.startswith(start)


def test_cli_output_file_takes_its_format_from_the_extension(tmp_path, capsys):
    target = tmp_path / "note.md"
    assert cli.run(MATMUL + ["-o", str(target), "--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("d/dA = G @ B.T") and f"steps written to {target} (markdown)" in out
    assert "numeric check PASSED" in out
    assert target.read_text(encoding="utf-8").startswith("# Gradient of A @ B")


def test_cli_unwritable_output_is_bad_input(tmp_path, capsys):
    assert cli.run(MATMUL + ["-o", str(tmp_path / "missing" / "note.html")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_unknown_format_is_bad_input(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.run(MATMUL + ["--format", "pdf"])
    assert exit_.value.code == 2


def test_steps_of_a_rewritten_expression_show_what_was_differentiated():
    # log(softmax(z)) is differentiated as z - logsumexp(z); the steps were built from the
    # expression as written, whose nodes the sweep's record does not contain (a KeyError)
    res = mc.derive("-sum(p * log(softmax(z)))", wrt="z", shapes={"z": ("c",), "p": ("c",)},
                    domains={"p": "probability"})
    text = res.steps().text()
    assert text.startswith("Gradient of -sum(p * (z - logsumexp(z))) with respect to z")
    assert "∂f/∂z = ∂f/∂z [step 4] + ∂f/∂z [step 7] = δ_3 + δ_1 * softmax(z) = softmax(z) - p" \
        in text


def test_a_result_too_long_for_a_line_is_written_with_named_values():
    """A deep network's gradient, written out, is far too long for a note's line: the result
    block gives it in named values instead (as res.text() does), and those lines, evaluated in
    order by the form table's NumPy interpreter, give NumPy's own backpropagation."""
    import numpy as np

    from forms import harness as H
    from reference import deep_tanh_network

    n, depth = 3, 30
    res, values, want = deep_tanh_network(n, depth)
    text = res.steps().text()
    result = text[text.index("\nResult\n"):]
    assert "too long" not in result
    named = re.findall(r"^\s+named value\s+(\w+ = .*)$", result, re.MULTILINE)
    # the first gradient line is in the derivation's names (δ_1 @ x.T), the last in these
    final = re.findall(r"^\s+gradient\s+∂f/∂W1 = (.*)$", result, re.MULTILINE)[-1]
    assert len(named) >= depth - 2 and final.endswith("@ x.T") and "δ" not in final
    got = H.evaluate_lines("\n".join(named + [final]), values, {"n": n})[-1]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
