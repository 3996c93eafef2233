"""A SandboxEnvironment in a process of its own, driven over a pipe.

The benchmark measures the worker, not the emulators: Google and Microsoft do their work on
their own machines, so here the emulators and the mail sink get a process (and a GIL) of
their own, and the worker's CPU time and memory are its own. The parent reaches the sandbox's
objects by dotted path ("google.create_event") with picklable arguments and results.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from integrations.sandbox.environment import SandboxEnvironment
from integrations.sandbox.server import Faults


class Call(NamedTuple):
    """env.<path>(*args, **kwargs), to be run in the sandbox's process."""

    path: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = {}


class RemoteSandbox:
    """The parent's handle: call(path, ...) runs env.<path>(...) in the sandbox's process."""

    def __init__(self, folder: Path, *, google_users: list[str], microsoft_users: list[str],
                 latency_seconds: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of the parent's threads
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, folder, google_users, microsoft_users, latency_seconds),
            name="sandbox", daemon=True)
        self.environ: dict[str, str] = {}
        self.config_data: dict[str, Any] = {}

    def start(self) -> RemoteSandbox:
        self._process.start()
        self.environ, self.config_data = self._answer()
        return self

    def call(self, path: str, *args: Any, **kwargs: Any) -> Any:
        self._pipe.send(("call", path, args, kwargs))
        return self._answer()

    def run(self, call: Call) -> Any:
        return self.call(call.path, *call.args, **call.kwargs)

    def call_many(self, calls: list[Call]) -> list[Any]:
        """Every call's result, in one exchange with the sandbox (bookings by the thousand)."""
        self._pipe.send(("many", "", tuple(calls), {}))
        return list(self._answer())

    def get(self, path: str) -> Any:
        self._pipe.send(("get", path, (), {}))
        return self._answer()

    def cpu_seconds(self) -> float:
        """CPU time the sandbox's process has used so far (every thread)."""
        self._pipe.send(("cpu", "", (), {}))
        return float(self._answer())

    def set(self, path: str, value: Any) -> None:
        self._pipe.send(("set", path, (value,), {}))
        self._answer()

    def config(self, database_url: str, **sections: dict[str, Any]) -> dict[str, Any]:
        """As SandboxEnvironment.config, made in the sandbox's process at start."""
        data = {name: dict(values) for name, values in self.config_data.items()}
        data["service"]["database_url"] = database_url
        for name, values in sections.items():
            data[name] = {**data.get(name, {}), **values}
        return data

    def stop(self) -> None:
        if self._process.is_alive():
            self._pipe.send(("stop", "", (), {}))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def _answer(self) -> Any:
        ok, value = self._pipe.recv()
        if not ok:
            raise RuntimeError(f"the sandbox failed:\n{value}")
        return value


def _serve(pipe: Connection, folder: Path, google_users: list[str], microsoft_users: list[str],
           latency_seconds: float) -> None:
    env = SandboxEnvironment(folder, google_users=google_users, microsoft_users=microsoft_users,
                             faults=Faults(latency_seconds=latency_seconds)).start()
    try:
        pipe.send((True, (env.environ, env.config(""))))
        while True:
            verb, path, args, kwargs = pipe.recv()
            if verb == "stop":
                return
            try:
                pipe.send((True, _do(env, verb, path, args, kwargs)))
            except Exception:
                pipe.send((False, traceback.format_exc()))
    finally:
        env.stop()


def _do(env: SandboxEnvironment, verb: str, path: str, args: tuple[Any, ...],
        kwargs: dict[str, Any]) -> Any:
    if verb == "cpu":
        return time.process_time()
    if verb == "many":
        return [_do(env, "call", call.path, call.args, dict(call.kwargs)) for call in args]
    *parents, name = path.split(".")
    owner: Any = env
    for part in parents:
        owner = getattr(owner, part)
    if verb == "set":
        setattr(owner, name, args[0])
        return None
    found = getattr(owner, name)
    if verb == "get":
        return found
    method: Callable[..., Any] = found
    return method(*args, **kwargs)
