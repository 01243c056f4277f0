"""The matcalc command: output, --numpy, --check, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from matcalc import cli

QUICKSTART = ["grad", "sum((tanh(W @ X + b) - Y)**2)", "--wrt", "W", "--shape", "W=n,d",
              "--shape", "X=d,m", "--shape", "b=n", "--shape", "Y=n,m"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, capsys):
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_quickstart_prints_text_and_latex(capsys):
    code, out, err = run(QUICKSTART, capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    # the shared activation is named, as the seed notes write it, then the result in its terms
    assert lines[:2] == ["a = tanh(W @ X + b)", "d/dW = 2 * ((a - Y) * (1 - a ** 2)) @ X.T"]
    assert lines[2] == r"LaTeX: a = \tanh\left(W X + b \mathbf{1}^{\top}\right)"
    assert lines[3].startswith(r"LaTeX: \frac{\partial f}{\partial W} = 2 \left(")


def test_numpy_prints_a_function_that_runs(capsys):
    code, out, _ = run(QUICKSTART + ["--numpy"], capsys)
    assert code == 0
    source = out[out.index("import numpy"):]
    namespace = {}
    exec(compile(source, "<cli output>", "exec"), namespace)   # the printed, generated code
    import numpy as np
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    b, Y = rng.standard_normal(3), rng.standard_normal((3, 4))
    t = np.tanh(W @ X + b[:, None])
    want = 2 * (((t - Y) * (1 - t ** 2)) @ X.T)
    np.testing.assert_allclose(namespace["gradient"](W, X, b, Y), want)


def test_check_passes_with_sizes_and_seed(capsys):
    code, out, _ = run(QUICKSTART + ["--check", "--size", "n=4,d=2", "--seed", "3"], capsys)
    assert code == 0
    assert "numeric check PASSED" in out and "n=4" in out and "d=2" in out and "seed 3" in out


def test_several_variables(capsys):
    code, out, _ = run(["grad", "W @ X + b", "--wrt", "W,b", "--wrt", "X", "--shape", "W=n,d",
                        "--shape", "X=d,m", "--shape", "b=n"], capsys)
    assert code == 0
    assert [l for l in out.splitlines() if l.startswith("d/d")] == [
        "d/dW = G @ X.T", "d/db = sum(G, axis=1)", "d/dX = W.T @ G"]


def test_scalars_and_domains(capsys):
    code, out, _ = run(["grad", "a * sum(log(X))", "--wrt", "a,X", "--shape", "a=",
                        "--shape", "X=n,n", "--domain", "X=positive", "--check"], capsys)
    assert code == 0, out
    assert "d/da = sum(log(X))" in out and "d/dX = a / X" in out


@pytest.mark.parametrize("args,fragment", [
    (["grad", "trace(A @ X", "--wrt", "X", "--shape", "A=n,n", "--shape", "X=n,n"],
     "was never closed"),
    (["grad", "A @ X", "--wrt", "X", "--shape", "A=n,m", "--shape", "X=n,n"],
     "shape mismatch in A @ B: A is n×m and X is n×n"),
    (["grad", "A @ Z", "--wrt", "Z", "--shape", "A=n,n"], "unknown name 'Z'"),
    (["grad", "sum(A)", "--wrt", "Q", "--shape", "A=n,n"], "'Q' is not a variable"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A"], "expected NAME=DIMS"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n,n"], "one or two dimensions"),
    (["grad", "sum(log(A))", "--wrt", "A", "--shape", "A=n,n", "--check"], "declare"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=x"],
     "NAME=INTEGER"),
    (["grad", "det(A)", "--wrt", "A", "--shape", "A=n,m"], "det needs a square matrix"),
    (["grad", "__import__('os')", "--wrt", "A", "--shape", "A=n,n"], "matcalc: error:"),
    # spellings int() refuses: a digit that is not a number, more digits than Python converts
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,²"], "a dimension is a name or an integer"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=²"],
     "NAME=INTEGER"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=" + "9" * 5000],
     "at most 15 digits"),
    (["grad", "sum(A)", "--wrt", ",", "--shape", "A=n,n"], "--wrt: name the variable"),
])
def test_bad_input_exits_2_with_a_one_line_message(args, fragment, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    assert err.startswith("matcalc: error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_missing_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["grad", "sum(A)"])
    assert exit_info.value.code == 2


def test_a_failing_check_exits_1(monkeypatch, capsys):
    # Sabotage the generated code (a wrong factor of 2): the check must notice and exit 1.
    from matcalc import api
    real = api.Derivation.numpy_source
    monkeypatch.setattr(api.Derivation, "numpy_source",
                        lambda self, name="gradient": real(self, name).replace(
                            "return ", "return 2 * "))
    code, out, _ = run(["grad", "sum(A * A)", "--wrt", "A", "--shape", "A=n,n", "--check"],
                       capsys)
    assert code == 1
    assert "numeric check FAILED" in out and "WRONG" in out


def test_the_installed_command_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "matcalc", *QUICKSTART], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a = tanh(W @ X + b)\nd/dW = 2 * ")


def test_hessian_with_respect_to_a_matrix_prints_the_tensor_and_its_kronecker_form(capsys):
    code, out, err = run(["hessian", "trace(X.T @ A @ X)", "--wrt", "X", "--shape", "X=n,n",
                          "--shape", "A=n,n", "--check"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == 'H = einsum("ik,jl->ijkl", A + A.T, eye(n))'
    assert lines[1] == "layout: H[i, j, k, l] = d2 f / dX_ij dX_kl"
    assert lines[2] == "vec form: kron(eye(n), A + A.T)"
    assert "numeric check PASSED" in out


def test_jacobian_and_hessian_in_matrix_form(capsys):
    code, out, _ = run(["jacobian", "tanh(A @ x)", "--wrt", "x", "--shape", "A=m,n",
                        "--shape", "x=n", "--numpy"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "J = diag(1 - tanh(A @ x) ** 2) @ A"
    assert "def gradient(A, x):" in out or "def gradient(x, A):" in out
    code, out, _ = run(["hessian", "x.T @ A @ x", "--wrt", "x", "--shape", "x=n",
                        "--shape", "A=n,n"], capsys)
    assert code == 0 and out.splitlines()[0] == "H = A + A.T"


def test_hessian_of_a_non_scalar_is_bad_input(capsys):
    code, _, err = run(["hessian", "A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"],
                       capsys)
    assert code == 2 and "scalar" in err


def test_a_reader_that_stops_early_gets_no_traceback():
    # the reader stops after the first line, as `matcalc ... | head -1` does; matcalc writes the
    # check's report after that, into a closed pipe
    command = [sys.executable, "-m", "matcalc", "hessian", "trace(X.T @ A @ X)", "--wrt", "X",
               "--shape", "X=n,n", "--shape", "A=n,n", "--check"]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                bufsize=0)
    first = producer.stdout.readline()
    producer.stdout.close()
    err = producer.stderr.read().decode()
    assert producer.wait(timeout=60) == 0
    assert first.startswith(b"H = einsum(") and "Traceback" not in err
