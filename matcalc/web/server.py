"""``matcalc serve``: the local web page's HTTP server (the standard library's, one thread a
request), answering only to itself.

Contract: ``make_server(host, port)`` binds (loopback unless told otherwise; port 0 picks a free
one) and returns a ``Server`` whose ``url`` is the page; ``serve(...)`` prints that URL, runs
until Ctrl-C and stops cleanly. What it answers:

=======================  =======================================================================
``GET /``                the page (its script reads the state from the query)
``GET /static/<name>``   the page's script, style sheet and icon: a fixed list, from the package
``GET /api/examples``    the menu of examples (JSON)
``POST /api/derive``     a derivation: a JSON object of the page's URL parameters (``web.state``)
                         in, the page's sections (``web.render``) out
``GET /api/download/…``  a note (LaTeX, Markdown, HTML) or the code (.py) of a recent derivation
=======================  =======================================================================

Safety, since any page the user visits may send requests to a local server:

- the ``Host`` header must name this server (``127.0.0.1:PORT``, ``localhost:PORT`` ...), so a
  DNS-rebinding page cannot read it; an ``Origin`` header, when sent, must be this server's;
  the API refuses a browser's cross-site and same-site requests (``Sec-Fetch-Site``);
- ``/api/derive`` takes only ``application/json`` (no cross-origin form can send it without a
  preflight, which is refused) of at most ``MAX_BODY`` bytes, with a ``Content-Length``;
- each derivation runs in a worker process with a time and memory limit (``web.worker``); one
  that runs out of time is killed and answered with an error, and the server keeps serving;
- user text only ever reaches matcalc's parser (no ``eval``); no request names a file: the
  assets are a fixed table read from the package when the server starts;
- every answer carries a content security policy without inline script or style, ``nosniff``,
  no referrer, and no framing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import signal
import socket
import sys
import threading
import urllib.parse
import webbrowser
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TextIO

from ..errors import MatcalcError
from .examples import menu
from .render import compute
from .state import PageState
from .worker import DEFAULT_TIMEOUT, Outcome, Workers, nothing

#: The largest request body accepted (bytes); the expression itself is limited by the parser.
MAX_BODY = 64 * 1024
#: Seconds a connection may stay idle before the server closes it.
IDLE = 30
#: Derivations kept for downloading (the most recent ones) and the largest one kept (bytes).
CACHED = 32
MAX_CACHED = 16 * 1024 * 1024
#: The page's files: URL path -> (file in the package's static folder, content type).
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/icon.svg": ("icon.svg", "image/svg+xml"),
}
#: Downloads: name in the URL -> (section of the page, key in it, file name, content type).
DOWNLOADS = {
    "latex": ("notes", "latex", "matcalc-note.tex", "application/x-tex; charset=utf-8"),
    "markdown": ("notes", "markdown", "matcalc-note.md", "text/markdown; charset=utf-8"),
    "html": ("notes", "html", "matcalc-note.html", "text/html; charset=utf-8"),
    "python": ("code", "source", "matcalc_gradient.py", "text/x-python; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: What a refused request is told, by the status of the refusal.
WORKER_STATUS = {"timeout": HTTPStatus.GATEWAY_TIMEOUT, "busy": HTTPStatus.SERVICE_UNAVAILABLE,
                 "stopping": HTTPStatus.SERVICE_UNAVAILABLE,
                 "crashed": HTTPStatus.INTERNAL_SERVER_ERROR}


def read_assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read from the installed package: URL path -> (bytes, content type)."""
    static = resources.files(__package__).joinpath("static")
    return {path: (static.joinpath(name).read_bytes(), kind)
            for path, (name, kind) in ASSETS.items()}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only.

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0")]
    [True, True, True, True, False]
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_names(host: str) -> set[str]:
    """The names a ``Host`` header may give for a server bound to ``host`` (without the port).

    Loopback names always; the bound address; for a wildcard address (``0.0.0.0``, ``::``) the
    machine's own name and addresses too.
    """
    names = {"127.0.0.1", "localhost", "[::1]"}
    bare = host.strip("[]")
    names.add(f"[{bare}]" if ":" in bare else bare.lower())
    try:
        wildcard = ipaddress.ip_address(bare).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        machine = socket.gethostname()
        names |= {machine.lower(), socket.getfqdn(machine).lower()}
        try:
            names |= set(socket.gethostbyname_ex(machine)[2])
        except OSError:
            pass
    return names


class NoteCache:
    """The most recent derivations' pages by key, for downloads (thread-safe, bounded)."""

    def __init__(self, size: int = CACHED):
        self._pages: OrderedDict[str, dict] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def key(query: str) -> str:
        """The key of a derivation: a digest of its canonical query."""
        return hashlib.sha256(query.encode("utf-8")).hexdigest()[:24]

    def get(self, key: str) -> dict | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: str, page: dict) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)


class Server(ThreadingHTTPServer):
    """The page's HTTP server: ``url``, the ``workers`` that derive, the recent ``cache``."""

    daemon_threads = True
    allow_reuse_address = False      # never share a port with another server

    def __init__(self, host: str, port: int, workers: Workers, verbose: bool = False):
        self.address_family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        super().__init__((host.strip("[]"), port), Handler)
        self.workers, self.verbose = workers, verbose
        self.assets = read_assets()
        self.cache = NoteCache()
        self.port = self.server_address[1]
        self.hosts = {f"{name}:{self.port}" for name in host_names(host)}
        if self.port == 80:
            self.hosts |= host_names(host)
        self.origins = {f"http://{h}" for h in self.hosts}
        self.url = page_url(host, self.port)

    def handle_error(self, request, client_address) -> None:
        """A request that failed in a way the handler did not answer: one line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return                            # the browser went away; nothing to say
        print(f"matcalc serve: a request failed: {type(error).__name__}: {error}",
              file=sys.stderr)

    def derive(self, state: PageState) -> tuple[HTTPStatus, dict]:
        """The page for ``state``: from the cache, or from a worker (then cached)."""
        query = state.to_query()
        key = NoteCache.key(query)
        page = self.cache.get(key)
        if page is None:
            outcome = self.workers.run(compute, state)
            if not outcome.ok:
                return WORKER_STATUS[outcome.status], {"ok": False, "query": query,
                                                       "error": worker_message(outcome,
                                                                               self.workers)}
            page = outcome.value
            if page.get("ok") and _text_size(page) <= MAX_CACHED:
                self.cache.put(key, page)
        status = HTTPStatus.OK if page.get("ok") else HTTPStatus.UNPROCESSABLE_ENTITY
        return status, {**page, "query": query, "key": key}


def page_url(host: str, port: int) -> str:
    """The page's address for a server bound to ``host``: a wildcard address is reached through
    the loopback one.

    >>> page_url("127.0.0.1", 8000), page_url("0.0.0.0", 8000), page_url("::1", 8000)
    ('http://127.0.0.1:8000/', 'http://127.0.0.1:8000/', 'http://[::1]:8000/')
    """
    bare = host.strip("[]")
    try:
        if ipaddress.ip_address(bare).is_unspecified:
            bare = "127.0.0.1"
    except ValueError:
        pass
    return f"http://[{bare}]:{port}/" if ":" in bare else f"http://{bare}:{port}/"


def _text_size(value) -> int:
    """Characters of text in a page (its strings, however nested)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_size(v) for v in value.values())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def worker_message(outcome: Outcome, workers: Workers) -> str:
    """What the page says when a worker gave no page."""
    if outcome.status == "timeout":
        return (f"the derivation took longer than {workers.timeout:g} s and was stopped "
                "(the server is still running; try a smaller expression)")
    if outcome.status == "busy":
        return "the server is busy with other derivations; try again in a moment"
    if outcome.status == "stopping":
        return "the server is stopping"
    return ("the derivation stopped without an answer (out of memory?); the server is still "
            "running")


def page_json(page: dict) -> dict:
    """What the browser gets: the page without the notes (they are downloads), with their URLs."""
    shown = {k: v for k, v in page.items() if k != "notes"}
    if page.get("ok") and "key" in page:
        notes = page.get("notes", {})
        shown["downloads"] = {
            name: f"/api/download/{page['key']}/{name}"
            for name, (section, field, _, _) in DOWNLOADS.items()
            if (notes if section == "notes" else page.get(section, {})).get(field) is not None}
        shown["notes_error"] = notes.get("error")
    return shown


class Handler(BaseHTTPRequestHandler):
    """One request: checked (host, origin, size, type), then answered from a fixed table."""

    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "matcalc"
    sys_version = ""
    timeout = IDLE

    # -- the stdlib's hooks --------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:     # noqa: A002 — the stdlib's name
        if self.server.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The stdlib's own refusals (bad request line, unknown method) as a short JSON answer."""
        self._json(HTTPStatus(code), {"ok": False, "error": message or HTTPStatus(code).phrase},
                   close=True)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if not self._trusted(api=path.startswith("/api/")):
            return
        if path in self.server.assets and not path.startswith("/api/"):
            body, kind = self.server.assets[path]
            return self._send(HTTPStatus.OK, body, kind)
        if path == "/api/examples":
            return self._json(HTTPStatus.OK, {"ok": True, "examples": menu()})
        if path.startswith("/api/download/"):
            return self._download(path[len("/api/download/"):])
        self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no such page"})

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if not self._trusted(api=True):
            return
        if path != "/api/derive":
            return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": "no such page"},
                              close=True)
        params = self._read_json()
        if params is None:
            return
        try:
            state = PageState.from_params(params)
        except MatcalcError as err:
            return self._json(HTTPStatus.UNPROCESSABLE_ENTITY,
                              {"ok": False, "error": str(err), "kind": type(err).__name__})
        status, page = self.server.derive(state)
        self._json(status, page_json(page))

    # -- checks --------------------------------------------------------------------------
    def _trusted(self, api: bool) -> bool:
        """Whether the request may be answered; if not, it has been refused."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.server.hosts:
            self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": (
                f"this server answers only to {self.server.url} (the request was for host "
                f"{host[:60]!r})")}, close=True)
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() not in self.server.origins:
            self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": (
                f"requests from {origin[:60]!r} are refused: only the page itself may call "
                "this server")}, close=True)
            return False
        site = self.headers.get("Sec-Fetch-Site")
        if api and site is not None and site not in ("same-origin", "none"):
            self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": (
                "requests from other sites are refused: only the page itself may call this "
                "server")}, close=True)
            return False
        return True

    def _read_json(self) -> object | None:
        """The request's JSON body, or None when it has been refused."""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                       {"ok": False, "error": "send the request as application/json"},
                       close=True)
            return None
        if self.headers.get("Transfer-Encoding") is not None or \
                self.headers.get("Content-Length") is None:
            self._json(HTTPStatus.LENGTH_REQUIRED,
                       {"ok": False, "error": "send the request with a Content-Length"},
                       close=True)
            return None
        try:
            length = int(self.headers["Content-Length"].strip()[:20])
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"ok": False, "error": (
                f"the request is {length} bytes; the limit is {MAX_BODY} bytes")
                if length >= 0 else "the Content-Length is not a number"}, close=True)
            return None
        body = self.rfile.read(length)
        try:
            return json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):     # not UTF-8, not JSON, nested too deeply
            self._json(HTTPStatus.BAD_REQUEST,
                       {"ok": False, "error": "the request is not a JSON object"})
            return None

    # -- answers -------------------------------------------------------------------------
    def _download(self, rest: str) -> None:
        key, _, name = rest.partition("/")
        page = self.server.cache.get(key)
        if name not in DOWNLOADS or page is None:
            return self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": (
                "no such download: derive the expression again (the server keeps the "
                f"{CACHED} most recent derivations)")})
        section, field, filename, kind = DOWNLOADS[name]
        text = page.get(section, {}).get(field)
        if text is None:
            return self._json(HTTPStatus.NOT_FOUND,
                              {"ok": False, "error": f"this derivation has no {name} to download"})
        self._send(HTTPStatus.OK, text.encode("utf-8"), kind,
                   {"Content-Disposition": f'attachment; filename="{filename}"'})

    def _json(self, status: HTTPStatus, payload: dict, close: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", close=close)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, extra: dict | None = None,
              close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


def make_server(host: str = "127.0.0.1", port: int = 0, timeout: float = DEFAULT_TIMEOUT,
                slots: int = 2, verbose: bool = False) -> Server:
    """A server for the page, bound to ``host:port`` (0: a free port), not yet serving.

    Raises ``MatcalcError`` when it cannot listen there (the port is taken, the address is not
    this machine's).
    """
    try:
        return Server(host, port, Workers(timeout=timeout, slots=slots), verbose)
    except OSError as err:
        raise MatcalcError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = False,
          timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None) -> int:
    """Serve the page until Ctrl-C (or SIGTERM): print its URL, open a browser if asked.

    Returns 0 once stopped; raises ``MatcalcError`` when it cannot listen where asked.
    """
    out = out or sys.stdout
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    server = None
    try:                                  # Ctrl-C at any moment stops it in the same words
        server = make_server(host, port, timeout)
        # start the workers' forkserver (it imports matcalc) while the user opens the page
        threading.Thread(target=server.workers.run, args=(nothing, None), daemon=True).start()
        print(f"matcalc: serving the page on {server.url} (Ctrl-C stops it)", file=out,
              flush=True)
        if not is_loopback(host):
            print(f"matcalc: warning: listening on {host}: other machines can reach this "
                  "server", file=out, flush=True)
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        print("matcalc: stopped", file=out, flush=True)
    finally:
        if server is not None:
            server.server_close()
            server.workers.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
