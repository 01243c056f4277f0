"""``matcalc serve`` without a browser: the JSON API, the URL's state, and the safety measures.

- a known derivation comes back right in every section (result, MathML, steps, code, check,
  downloads), and an error comes back as the command line prints it;
- the URL's query round-trips (the page's state, mirroring the command line's flags), and
  loading the canonical query again gives the same derivation;
- requests for another host (DNS rebinding), from another origin or site, too large, of the
  wrong type, or naming files are refused; the server binds to loopback by default;
- a derivation that runs too long is killed and answered with an error, while the server
  answers other requests; a worker that dies is reported in one line;
- every example of the page's menu derives and passes its numeric check;
- ``python -m matcalc serve`` prints its URL, serves, and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import glob
import html.parser
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import webbrowser

import pytest

import matcalc as mc
from matcalc import cli
from matcalc import expr as E
from matcalc.web import render
from matcalc.web.examples import EXAMPLES, menu
from matcalc.web.server import ASSETS, MAX_BODY, SECURITY_HEADERS, read_assets
from matcalc.web.state import PageState
from matcalc.web.worker import Workers, nothing
from cookbook.compare import normal_form
from cookbook.identities import IDENTITIES
from serving import KNOWN, SLOW, call, derive, running

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def server():
    with running(timeout=60) as s:
        yield s


# ---------------------------------------------------------------------------------------------
# The API gives the derivation
# ---------------------------------------------------------------------------------------------

def test_a_known_derivation_in_every_section(server):
    answer = derive(server, KNOWN)
    assert answer.status == 200
    page = answer.json
    assert page["ok"] and page["title"] == "gradient of trace(A @ X @ B) with respect to X"
    assert page["result"]["text"] == "A.T @ B.T"
    assert page["result"]["latex"] == [r"\frac{\partial f}{\partial X} = A^{\top} B^{\top}"]
    [mathml] = page["result"]["mathml"]
    assert mathml.startswith("<math") and "<mfrac>" in mathml
    assert page["check"]["verdict"] == "PASSED" and page["check"]["ok"] is True
    assert 0 <= page["check"]["worst"] < 1e-8
    assert page["check"]["report"].startswith("numeric check PASSED: worst relative error")
    assert page["code"]["source"].rstrip().endswith("return A.T @ B.T")
    # the steps: one collapsible block per block of the note, headed by its heading
    res = mc.derive(KNOWN["expr"], "X", shapes={n: ("n", "n") for n in "AXB"})
    note = res.steps()
    assert page["steps"]["blocks"] == len(note.blocks)
    assert page["steps"]["html"].count("<details") == len(note.blocks)
    assert "<summary>The expression</summary>" in page["steps"]["html"]
    assert "<style" not in page["steps"]["html"] and "<script" not in page["steps"]["html"]
    assert page["query"] == \
        "expr=trace(A%20@%20X%20@%20B)&wrt=X&shape=A=n,n&shape=X=n,n&shape=B=n,n"
    # the downloads are the note's renderings and the code, as attachments
    downloads = page["downloads"]
    assert set(downloads) == {"latex", "markdown", "html", "python"}
    tex = call(server, "GET", downloads["latex"])
    assert tex.status == 200 and tex.body.decode() == note.render("latex")
    assert tex.headers["content-disposition"] == 'attachment; filename="matcalc-note.tex"'
    assert call(server, "GET", downloads["markdown"]).body.decode() == note.markdown()
    assert call(server, "GET", downloads["html"]).body.decode() == note.html()
    code = call(server, "GET", downloads["python"]).body.decode()
    assert code == res.numpy_source() == page["code"]["source"]
    assert call(server, "GET", "/api/download/0123456789abcdef01234567/latex").status == 404
    assert call(server, "GET", downloads["latex"].replace("latex", "passwd")).status == 404


def test_second_order_derivatives(server):
    hessian = derive(server, {"expr": "x.T @ A @ x", "derive": "hessian", "wrt": "x",
                              "shape": ["x=n", "A=n,n"]}).json
    assert hessian["result"]["text"] == "A + A.T" and hessian["check"]["verdict"] == "PASSED"
    tensor = derive(server, {"expr": "trace(X.T @ A @ X)", "derive": "hessian", "wrt": "X",
                             "shape": ["X=n,n", "A=n,n"]}).json
    assert tensor["result"]["text"] == 'einsum("ik,jl->ijkl", A + A.T, eye(n))'
    assert len(tensor["result"]["mathml"]) == 2            # index form and Kronecker form
    product = derive(server, {"expr": "trace(X.T @ A @ X)", "derive": "hvp", "wrt": "X",
                              "shape": ["X=n,n", "A=n,n"]}).json
    assert product["result"]["text"] == "(A.T + A) @ v"
    jac = derive(server, {"expr": "tanh(A @ x)", "derive": "jacobian", "wrt": "x",
                          "shape": ["A=m,n", "x=n"]}).json
    assert jac["result"]["text"] == "diag(1 - tanh(A @ x) ** 2) @ A"


def cli_error(args: list[str], capsys) -> str:
    """What ``matcalc`` prints for bad input, without its ``matcalc: error: `` prefix."""
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("matcalc: error: ")
    return err[len("matcalc: error: "):].rstrip("\n")


@pytest.mark.parametrize("params,args", [
    ({"expr": "trace(A @ X", "wrt": "X", "shape": ["A=n,n", "X=n,n"]},
     ["grad", "trace(A @ X", "--wrt", "X", "--shape", "A=n,n", "--shape", "X=n,n"]),
    ({"expr": "sum(X) +* 2", "wrt": "X", "shape": "X=n,n"},
     ["grad", "sum(X) +* 2", "--wrt", "X", "--shape", "X=n,n"]),
    ({"expr": "A @ X", "wrt": "X", "shape": ["A=n,m", "X=n,n"]},
     ["grad", "A @ X", "--wrt", "X", "--shape", "A=n,m", "--shape", "X=n,n"]),
    ({"expr": "__import__('os').system('true')", "wrt": "X", "shape": "X=n,n"},
     ["grad", "__import__('os').system('true')", "--wrt", "X", "--shape", "X=n,n"]),
])
def test_errors_read_as_the_command_line_prints_them(server, params, args, capsys):
    answer = derive(server, params)
    assert answer.status == 422
    assert answer.json["ok"] is False
    assert answer.json["error"] == cli_error(args, capsys)
    assert "Traceback" not in answer.json["error"]


def test_a_syntax_error_has_its_caret_under_the_offending_text(server):
    error = derive(server, {"expr": "sum(X) +* 2", "wrt": "X", "shape": "X=n,n"}).json["error"]
    first, text, caret = error.split("\n")
    assert first.startswith("invalid syntax")
    assert text == "  sum(X) +* 2"
    assert caret.index("^") == text.index("*")


def test_a_failing_section_leaves_the_others(server):
    # log of a normal draw is not finite: the check says so, result and code are still shown
    page = derive(server, {"expr": "sum(log(X))", "wrt": "X", "shape": "X=n,n"}).json
    assert page["ok"] and page["result"]["text"] == "1 / X"
    assert "declare such variables positive" in page["check"]["error"]
    assert page["code"]["error"] is None and page["steps"]["error"] is None


# ---------------------------------------------------------------------------------------------
# The URL's state
# ---------------------------------------------------------------------------------------------

CANONICAL = [
    "expr=trace(A%20@%20X%20@%20B)&wrt=X&shape=A=n,n&shape=X=n,n&shape=B=n,n",
    "expr=sum((tanh(W%20@%20X%20%2B%20b)%20-%20Y)%20**%202)%20/%20m&wrt=W&wrt=b&shape=W=n,d"
    "&shape=X=d,m&shape=b=n&shape=Y=n,m",
    "expr=a%20*%20sum(log(X))&derive=hessian&wrt=X&shape=a=&shape=X=n,3&domain=X=positive"
    "&size=n=4&seed=7",
    "expr=x%20%26%20y%20%23%20%25%20%CE%B4&wrt=x",          # & # % and a Greek letter
]


@pytest.mark.parametrize("query", CANONICAL)
def test_a_canonical_query_round_trips(query):
    state = PageState.from_query(query)
    assert state.to_query() == query
    assert PageState.from_query(state.to_query()) == state


def test_the_command_line_spellings_are_read_and_written_canonically():
    state = PageState.from_query("expr=sum(W%20@%20x)&wrt=W,x&shape=W=(n,%20d)&shape=x=n"
                                 "&size=n=4,d=3&domain=%20W%20=%20positive%20&seed=")
    assert state == PageState("sum(W @ x)", "grad", ("W", "x"), (("W", ("n", "d")), ("x", ("n",))),
                              (("W", "positive"),), (("n", 4), ("d", 3)), 0)
    assert state.to_query() == ("expr=sum(W%20@%20x)&wrt=W&wrt=x&shape=W=n,d&shape=x=n"
                                "&domain=W=positive&size=n=4&size=d=3")
    # as the command line reads them
    assert dict(state.shapes) == dict(cli.parse_shape(s) for s in ["W=(n, d)", "x=n"])
    assert dict(state.sizes) == cli.parse_sizes(["n=4,d=3"])


def test_the_url_reproduces_the_derivation(server):
    first = derive(server, {"expr": "sum(tanh(W @ x + b))", "wrt": "W,b",
                            "shape": ["W=n,d", "x=d", "b=n"], "size": "n=4,d=3",
                            "seed": "2"}).json
    query = first["query"]
    assert query == ("expr=sum(tanh(W%20@%20x%20%2B%20b))&wrt=W&wrt=b&shape=W=n,d&shape=x=d"
                     "&shape=b=n&size=n=4&size=d=3&seed=2")
    again = derive(server, urllib.parse.parse_qs(query, keep_blank_values=True)).json
    assert again == first
    assert "sizes n=4, d=3; seed 2" in again["check"]["report"]


@pytest.mark.parametrize("params,fragment", [
    ({"wrt": "X", "shape": "X=n,n"}, "give an expression"),
    ({"expr": "sum(X)", "shape": "X=n,n"}, "wrt: name the variable"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n", "colour": "red"},
     "unknown parameter 'colour'"),
    ({"expr": ["sum(X)", "trace(X)"], "wrt": "X", "shape": "X=n,n"}, "expr is given 2 times"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n", "derive": "integral"},
     "derive 'integral': choose one of grad, jacobian, hessian, hvp"),
    ({"expr": "sum(X)", "wrt": "X,Y", "shape": ["X=n,n", "Y=n,n"], "derive": "hessian"},
     "a Hessian is taken with respect to one variable; wrt names 2: X, Y"),
    ({"expr": "sum(X)", "wrt": "X", "shape": ["X=n,n", "X=n,m"]}, "shape of 'X' is given twice"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n,n"}, "shape 'X=n,n,n': give one or two"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n", "size": "n=100000"},
     "size n=100000: the page checks with sizes from 1 to 500"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n", "seed": "-1"}, "seed '-1': expected"),
    ({"expr": "sum(X)", "wrt": "X", "shape": {"X": "n,n"}}, "shape: expected text"),
    ({"expr": "sum(X)", "wrt": "X", "shape": ["X=n," + "n" * 300]}, "longer than 200"),
    ({"expr": "sum(X)", "wrt": ["X"] * 201, "shape": "X=n,n"}, "more than 200 parameter values"),
    ({"expr": "sum(X)", "wrt": "X", "shape": "X=n,n", "domain": "X=positve"}, "positve"),
    ({"expr": "sum(X)\ud800", "wrt": "X", "shape": "X=n,n"}, "expr: contains an unpaired"),
    ({"expr": "sum(X)", "wrt": "X\udfff", "shape": "X=n,n"}, "wrt: contains an unpaired"),
])
def test_bad_requests_get_one_line(server, params, fragment):
    answer = derive(server, params)
    assert answer.status == 422
    assert fragment in answer.json["error"] and "\n" not in answer.json["error"]


def test_a_query_that_is_not_utf8_or_too_long_is_refused():
    with pytest.raises(mc.MatcalcError, match="not valid UTF-8"):
        PageState.from_query("expr=%ff&wrt=X")
    with pytest.raises(mc.MatcalcError, match="more than 200 parameters"):
        PageState.from_query("&".join(["wrt=X"] * 300))


# ---------------------------------------------------------------------------------------------
# Safety
# ---------------------------------------------------------------------------------------------

def test_the_server_binds_to_loopback_by_default(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"
    # this machine's address on its network, if it has one, does not reach the server
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))           # UDP: chooses a route, sends nothing
        outside = probe.getsockname()[0]
    except OSError:
        outside = None
    finally:
        probe.close()
    if outside and not outside.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((outside, server.port), timeout=5).close()


@pytest.mark.parametrize("path", ["/", "/api/examples"])
@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1",
                                  "127.0.0.1.evil.example:{port}", ""])
def test_another_host_is_refused(server, path, host):
    answer = call(server, "GET", path, host=host.format(port=server.port))
    assert answer.status == 403
    assert answer.json["error"].startswith(f"this server answers only to {server.url}")


def test_the_loopback_names_are_its_own(server):
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                 f"LOCALHOST:{server.port}"):
        assert call(server, "GET", "/", host=host).status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null",
                                    "http://127.0.0.1:1", "https://127.0.0.1:{port}"])
def test_another_origin_is_refused(server, origin):
    answer = derive(server, KNOWN, headers={"Origin": origin.format(port=server.port)})
    assert answer.status == 403 and "refused" in answer.json["error"]


def test_its_own_origin_is_served(server):
    answer = derive(server, KNOWN, headers={"Origin": f"http://127.0.0.1:{server.port}",
                                            "Sec-Fetch-Site": "same-origin"})
    assert answer.status == 200 and answer.json["result"]["text"] == "A.T @ B.T"


def test_other_sites_may_link_to_the_page_but_not_call_the_api(server):
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert call(server, "GET", "/?expr=trace(X)", headers=cross).status == 200
    assert call(server, "GET", "/api/examples", headers=cross).status == 403
    assert derive(server, KNOWN, headers={"Sec-Fetch-Site": "same-site"}).status == 403


def test_an_oversized_request_is_refused_and_the_server_goes_on(server):
    big = b'{"expr": "' + b"x" * (MAX_BODY + 1) + b'"}'
    answer = call(server, "POST", "/api/derive", big,
                  headers={"Content-Type": "application/json"})
    assert answer.status == 413
    assert answer.json["error"] == f"the request is {len(big)} bytes; the limit is {MAX_BODY} bytes"
    # a claimed length is refused before anything is read
    answer = call(server, "POST", "/api/derive", headers={
        "Content-Type": "application/json", "Content-Length": str(10 ** 9)})
    assert answer.status == 413
    assert derive(server, KNOWN).status == 200


@pytest.mark.parametrize("headers,status", [
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "application/json", "Content-Length": None,
      "Transfer-Encoding": "chunked"}, 411),
    ({"Content-Type": "application/json", "Content-Length": "twelve"}, 413),
])
def test_a_request_of_the_wrong_kind_is_refused(server, headers, status):
    answer = call(server, "POST", "/api/derive", b'{"expr": "x"}', headers=headers)
    assert answer.status == status


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[" * 60000 + b"]" * 60000,
                                  b'{"expr": 1e999}'])
def test_a_body_that_is_not_a_json_object_is_refused(server, body):
    body = body[:MAX_BODY]
    answer = call(server, "POST", "/api/derive", body,
                  headers={"Content-Type": "application/json"})
    assert answer.status in (400, 422)
    assert answer.json["ok"] is False and "\n" not in answer.json["error"]


@pytest.mark.parametrize("path", ["/static/../../pyproject.toml", "/static/%2e%2e/__init__.py",
                                  "/etc/passwd", "/static/", "/static/state.py", "//etc/passwd",
                                  "/index.html", "/api/derive"])
def test_no_request_reads_a_file(server, path):
    answer = call(server, "GET", path)
    assert answer.status == 404 and answer.json["error"] == "no such page"


def test_the_assets_are_the_packaged_files_with_the_security_headers(server):
    for path, (body, kind) in read_assets().items():
        answer = call(server, "GET", path)
        assert answer.status == 200 and answer.body == body
        assert answer.headers["content-type"] == kind
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name.lower()] == value
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp and "default-src 'none'" in csp


class _Markup(html.parser.HTMLParser):
    """Scripts, inline handlers and inline styles in a page."""

    def __init__(self):
        super().__init__()
        self.found: list = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            self.found.append(("script", names.get("src")))
            self._in_script = True
        if tag == "style" or "style" in names:
            self.found.append(("inline style", tag))
        self.found += [("handler", tag, n) for n in names if n.startswith("on")]
        self.found += [("remote", tag, v) for n, v in attrs if n in ("src", "href") and v and
                       re.match(r"(?:[a-z]+:)?//", v)]

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(("inline script", data[:40]))

    def handle_endtag(self, tag):
        self._in_script = self._in_script and tag != "script"


def test_the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere(server):
    parser = _Markup()
    parser.feed(call(server, "GET", "/").body.decode())
    assert parser.found == [("script", "/static/app.js")]
    script = call(server, "GET", "/static/app.js").body.decode()
    assert "innerHTML" not in script and "eval(" not in script and "http" not in script


def test_the_pages_domain_menu_offers_every_domain(server):
    """The page's menu lists the domains matcalc knows, in its order (a declared domain outside
    it would still show, but as an unknown one)."""
    script = call(server, "GET", "/static/app.js").body.decode()
    listed = re.search(r"const DOMAINS = \[([^\]]*)\]", script).group(1)
    assert re.findall(r'"([a-z_]+)"', listed) == list(E.DOMAINS)


def test_a_slow_derivation_times_out_while_the_server_answers():
    with running(timeout=5) as server:
        slow: dict = {}
        started = time.monotonic()
        thread = threading.Thread(target=lambda: slow.update(answer=derive(server, SLOW)))
        thread.start()
        time.sleep(0.5)
        fast = derive(server, KNOWN)                        # served meanwhile
        assert fast.status == 200 and fast.json["result"]["text"] == "A.T @ B.T"
        assert thread.is_alive()
        thread.join(60)
        answer = slow["answer"]
        assert answer.status == 504
        assert answer.json["error"] == ("the derivation took longer than 5 s and was stopped "
                                        "(the server is still running; try a smaller "
                                        "expression)")
        assert 5 <= time.monotonic() - started < 40
        after = derive(server, {**KNOWN, "seed": "1"})      # not from the cache
        assert after.status == 200 and "seed 1" in after.json["check"]["report"]


def test_hostile_text_is_an_error_and_the_server_goes_on(server):
    huge = derive(server, {"expr": "x + " * 10_000 + "x", "wrt": "x", "shape": "x=n"})
    assert huge.status == 422 and "the limit is 20000" in huge.json["error"]
    nested = derive(server, {"expr": "(" * 5000 + "x" + ")" * 5000, "wrt": "x",
                             "shape": "x=n"})
    assert nested.status == 422 and "nested" in nested.json["error"]
    assert derive(server, KNOWN).json["result"]["text"] == "A.T @ B.T"


def test_a_worker_that_dies_or_runs_out_of_memory_is_reported():
    workers = Workers(timeout=60, slots=1, memory=768 * 1024 ** 2)
    assert workers.run(nothing, "still here").value == "still here"
    assert workers.run(os._exit, 3).status == "crashed"
    assert workers.run(bytearray, 4 * 1024 ** 3).status == "crashed"     # a MemoryError
    assert workers.run(nothing, 1).ok


def test_an_internal_error_is_one_line():
    assert render.message(KeyError(140095878284608)) == (
        "matcalc failed on this input with an internal error (KeyError: 140095878284608); "
        "please report it with the link to this page")
    assert "\n" not in render.message(RecursionError("maximum recursion depth exceeded"))


# ---------------------------------------------------------------------------------------------
# The examples, and the command
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.title[:40])
def test_every_example_derives_and_passes_its_check(example):
    page = render.compute(example.state)
    assert page["ok"], page.get("error")
    assert page["check"]["verdict"] == "PASSED", page["check"]
    assert page["code"]["error"] is None and page["steps"]["error"] is None
    assert page["notes"]["error"] is None


def test_the_cookbook_examples_are_the_books_identities():
    cookbook = [e for e in EXAMPLES if e.group == "Matrix Cookbook"]
    assert len(cookbook) >= 8
    for example in cookbook:
        label = re.match(r"\((\d+)\)", example.title).group(1)
        [(expression, wrt, book)] = [(x, w, b) for lab, x, w, b in IDENTITIES if lab == label]
        assert mc.to_text(expression) == example.state.expr and example.state.wrt == (wrt.name,)
        res = mc.derive(example.state.expr, wrt.name, shapes=dict(example.state.shapes),
                        domains=dict(example.state.domains))
        shapes = dict(example.state.shapes)
        assert normal_form(res.gradient) == normal_form(mc.parse(book, shapes)), example.title


def test_the_menu_is_served(server):
    answer = call(server, "GET", "/api/examples")
    assert answer.json["examples"] == menu()
    titles = [e["title"] for e in menu()]
    assert "003 — Z = A B in index notation" in titles and "(101) tr(A X B)" in titles


def test_python_m_matcalc_serve_prints_its_url_and_stops_on_ctrl_c():
    process = subprocess.Popen([sys.executable, "-m", "matcalc", "serve"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": ROOT})
    try:
        line = process.stdout.readline()
        url = re.fullmatch(r"matcalc: serving the page on (http://127\.0\.0\.1:(\d+)/) "
                           r"\(Ctrl-C stops it\)\n", line)
        assert url, line
        connection = socket.create_connection(("127.0.0.1", int(url.group(2))), timeout=30)
        connection.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{url.group(2)}\r\n"
                           "Connection: close\r\n\r\n".encode())
        assert connection.recv(100).startswith(b"HTTP/1.1 200 OK")
        connection.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert out == "matcalc: stopped\n" and "Traceback" not in err


def test_serve_open_opens_the_page_in_a_browser(monkeypatch, capsys):
    opened = []

    def browser_opens(url):
        opened.append(url)
        raise KeyboardInterrupt            # the user presses Ctrl-C at once

    monkeypatch.setattr(webbrowser, "open", browser_opens)
    assert cli.run(["serve", "--open"]) == 0
    out = capsys.readouterr().out
    assert out == f"matcalc: serving the page on {opened[0]} (Ctrl-C stops it)\nmatcalc: stopped\n"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", opened[0])


@pytest.mark.parametrize("args,fragment", [
    (["serve", "--port", "65536"], "is not a port"),
    (["serve", "--timeout", "0"], "is not a number of seconds"),
    (["serve", "--host", "192.0.2.1"], "cannot listen on 192.0.2.1:0"),
])
def test_serve_with_bad_arguments_exits_2(args, fragment, capsys):
    try:
        code = cli.run(args)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_the_page_files_are_package_data():
    tomllib = pytest.importorskip("tomllib")          # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)
    patterns = project["tool"]["setuptools"]["package-data"]["matcalc.web"]
    static = os.path.join(ROOT, "matcalc", "web", "static")
    shipped = {name for pattern in patterns
               for name in map(os.path.basename, glob.glob(os.path.join(static, "..", pattern)))}
    assert {name for _, (name, _) in ASSETS.items()} <= shipped
    assert "playwright" in " ".join(project["project"]["optional-dependencies"]["test"])
