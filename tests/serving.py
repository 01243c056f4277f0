"""Helpers for the tests of ``matcalc serve``: a server in a thread, and raw HTTP requests.

``running(**options)`` starts ``make_server`` on a free loopback port and stops it after the
block; ``call(server, method, path, ...)`` sends one request with exactly the headers given
(``Host`` included), so a test can send what a hostile page or a rebinding DNS would.
"""

from __future__ import annotations

import http.client
import json
import threading
from contextlib import contextmanager

from matcalc.web.server import Server, make_server

#: A derivation that takes far longer than any test's time limit: the Hessian of a function
#: nested a hundred deep (about 10 s at 60 deep on a laptop; the worker is killed long before).
SLOW = {"expr": "sum(" + "tanh(" * 100 + "x" + ")" * 100 + ")", "derive": "hessian",
        "wrt": "x", "shape": "x=n"}
#: The Cookbook's (101): d/dX tr(A X B) = Aᵀ Bᵀ.
KNOWN = {"expr": "trace(A @ X @ B)", "wrt": ["X"], "shape": ["A=n,n", "X=n,n", "B=n,n"]}


@contextmanager
def running(**options):
    """A ``Server`` serving in a background thread (``options`` as for ``make_server``)."""
    server = make_server(port=0, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.workers.close()
        thread.join(10)


class Answer:
    """A response: ``status``, ``headers`` (a dict, names lower-case), ``body`` and ``json``."""

    def __init__(self, response: http.client.HTTPResponse):
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read()

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def call(server: Server, method: str, path: str, body: bytes | dict | None = None,
         headers: dict | None = None, host: str | None = None, timeout: float = 120) -> Answer:
    """One request to ``server`` with exactly these headers; a dict body is sent as JSON."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": host if host is not None else f"127.0.0.1:{server.port}"}
        if isinstance(body, dict):
            body = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        if body is not None:
            sent["Content-Length"] = str(len(body))
        sent.update(headers or {})
        for name, value in sent.items():
            if value is not None:
                connection.putheader(name, value)
        connection.endheaders()
        if body is not None:
            try:
                connection.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass                  # refused before the body was read: read the answer
        return Answer(connection.getresponse())
    finally:
        connection.close()


def derive(server: Server, params: dict, **options) -> Answer:
    """``POST /api/derive`` with the page's parameters."""
    return call(server, "POST", "/api/derive", params, **options)
