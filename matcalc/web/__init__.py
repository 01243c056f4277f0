"""The local web page (``matcalc serve``): type an expression, see the mathematics, take the code.

Contract: the package is layered like matcalc itself — ``state`` (a request, read from and
written to the page's URL with the command line's spellings), ``examples`` (the menu),
``render`` (the page's sections from the public API), ``worker`` (each derivation in a process
of its own, with a time limit), ``server`` (the HTTP server and its safety checks) — and uses
only the public API (``matcalc.api``, ``matcalc.errors``, ``matcalc.flags``). The page itself is
``static/``: HTML, one script, one style sheet, served from the package, loading nothing from
elsewhere.
"""
