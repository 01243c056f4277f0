"""Each derivation in a worker process of its own, stopped when it runs out of time.

Contract: ``Workers(timeout, slots, memory).run(function, argument)`` calls
``function(argument)`` in a new child process (``function`` a module-level function, both
picklable) and returns an ``Outcome``: the value, or why there is none —

- ``"timeout"``: the child did not answer within ``timeout`` seconds and was killed;
- ``"busy"``: all ``slots`` children stayed busy for ``timeout`` seconds, so none was started;
- ``"crashed"``: the child died without answering (out of memory, a signal);
- ``"stopping"``: ``close()`` was called, so no child was started.

At most ``slots`` children run at once, whatever the number of requests. Children are forked
from a server process that imported matcalc once (the ``forkserver`` start method where the
platform has it, else ``spawn``), so each starts in milliseconds from a single-threaded parent
and leaves nothing behind; each is limited to ``memory`` bytes of address space where the
platform can limit it. ``close()`` kills the children still running.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

try:
    import resource
except ImportError:                 # not on Windows: no memory limit there
    resource = None

#: Seconds a derivation may take, and bytes of address space a worker may use, by default.
DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY = 2 * 1024 ** 3
#: Modules the forkserver imports once, before it forks any worker.
PRELOAD = ["matcalc.web.render"]


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``status`` is ``ok``, ``timeout``, ``busy``, ``crashed`` or ``stopping``."""

    status: str
    value: Any = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _child(function: Callable, argument: Any, connection, memory: int | None) -> None:
    """The worker's whole life: limit itself, compute, send the value back."""
    if memory and resource is not None:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ValueError, OSError):     # a lower hard limit already: keep it
            pass
    try:
        connection.send(function(argument))
    except BaseException:              # noqa: BLE001 — no traceback on the server's terminal:
        return                         # the parent sees the pipe close and reports "crashed"
    finally:
        connection.close()


def nothing(argument: Any) -> Any:
    """A job that returns its argument: starts the forkserver ahead of the first request."""
    return argument


class Workers:
    """Runs jobs in child processes, ``slots`` at a time, each for at most ``timeout`` seconds.

    >>> Workers(timeout=60, slots=1).run(nothing, 42).value
    42
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, slots: int = 2,
                 memory: int | None = DEFAULT_MEMORY):
        if "forkserver" in multiprocessing.get_all_start_methods():
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(PRELOAD)
        else:
            self._context = multiprocessing.get_context("spawn")
        self.timeout, self.memory = timeout, memory
        self._slots = threading.BoundedSemaphore(slots)
        self._running: set = set()
        self._lock = threading.Lock()
        self._started = threading.Condition(self._lock)   # notified when a start is over
        self._starting = 0
        self._closed = False

    def run(self, function: Callable, argument: Any) -> Outcome:
        """``function(argument)`` in a child process; see the module's contract."""
        start = time.monotonic()
        if not self._slots.acquire(timeout=self.timeout):
            return Outcome("busy", seconds=time.monotonic() - start)
        try:
            return self._run(function, argument, time.monotonic())
        finally:
            self._slots.release()

    def _run(self, function: Callable, argument: Any, start: float) -> Outcome:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_child, daemon=True,
                                        args=(function, argument, writer, self.memory))
        with self._lock:
            if self._closed:
                reader.close()
                writer.close()
                return Outcome("stopping")
            self._starting += 1
        try:
            process.start()
        except OSError:                     # no process to be had (a limit on processes)
            reader.close()
            writer.close()
            return Outcome("crashed", seconds=time.monotonic() - start)
        finally:
            with self._lock:
                self._starting -= 1
                if process.pid is not None:
                    self._running.add(process)
                self._started.notify_all()
        writer.close()                      # the child holds the only writer: EOF when it dies
        try:
            if not reader.poll(self.timeout):
                process.kill()
                return Outcome("timeout", seconds=time.monotonic() - start)
            try:
                value = reader.recv()
            except (EOFError, OSError):
                return Outcome("crashed", seconds=time.monotonic() - start)
            return Outcome("ok", value, time.monotonic() - start)
        finally:
            reader.close()
            process.join(10)
            if process.is_alive():          # pragma: no cover — a child that ignores SIGKILL
                process.kill()
            with self._lock:
                self._running.discard(process)

    def close(self) -> None:
        """Kill every child still running and start no more (the server is stopping).

        A child being started is waited for first (a few seconds at most): one whose parent
        stopped in the middle of starting it would print the traceback of its broken start.
        """
        with self._lock:
            self._closed = True
            self._started.wait_for(lambda: self._starting == 0, timeout=10)
            running = list(self._running)
        for process in running:
            if process.is_alive():
                process.kill()
