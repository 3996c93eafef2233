"""`assistant bench`: the performance targets, measured on this machine, in one table."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console

from assistant.bench.figures import FULL, QUICK, Figures, Size

POSTGRES_URL_ENV = "ASSISTANT_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@click.command()
@click.option("--quick", is_flag=True,
              help=f"A smoke-test size ({2 * QUICK.calendars} calendars) instead of "
                   f"{2 * FULL.calendars:,}.")
@click.option("--calendars", type=click.IntRange(2), metavar="N",
              help="Calendars in all, half Google and half Outlook (overrides the size).")
@click.option("--store", "stores", type=click.Choice(["sqlite", "postgresql", "both"]),
              default="both", show_default=True, help="Which database to run against.")
@click.option("--postgres-url", envvar=POSTGRES_URL_ENV, default=DEFAULT_POSTGRES,
              show_default=True, help="A PostgreSQL server the benchmark may create and drop a "
                                      f"database on (or set {POSTGRES_URL_ENV}).")
@click.option("--latency-ms", type=click.FloatRange(0), default=50.0, show_default=True,
              help="Added to every HTTP request the emulators answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(quick: bool, calendars: int | None, stores: str, postgres_url: str,
          latency_ms: float, as_json: bool) -> None:
    """Measure polling, bursts, push and memory at company size, against the emulators.

    Starts the Google and Microsoft emulators and an SMTP server in a process of their own,
    runs the real worker against them on each store, and prints every figure beside its
    target. At the full size, exits 1 when a target was missed.
    """
    from assistant.bench import report  # rich and the worker load only when asked for

    size = QUICK if quick else FULL
    if calendars:
        size = _scaled(size, calendars // 2)
    console = Console(stderr=as_json)
    names = ("sqlite", "postgresql") if stores == "both" else (stores,)
    runs: list[Figures] = []
    for store in names:
        runs.append(_in_own_process(size, store, postgres_url, latency_ms / 1000, console))
        if len(runs) < len(names):  # a long run's first figures should not wait for the next
            report.show(runs[-1:], console)
    if as_json:
        click.echo(json.dumps(report.as_json(runs), indent=1))
    else:
        report.show(runs, console)
    if size != FULL:
        console.print("The targets are set for the full size: at this one the table shows that "
                      "every phase runs, not that the targets are met.", highlight=False)
    elif not report.all_met(runs):
        raise SystemExit(1)


def _scaled(size: Size, calendars: int) -> Size:
    """A size for another number of calendars: bursts stay within the calendars there are."""
    burst = min(size.burst, calendars)
    return replace(size, calendars=calendars, burst=burst,
                   pushed=min(size.pushed, max(1, 2 * calendars - burst)),
                   naive_sample=min(size.naive_sample, calendars))


def _in_own_process(size: Size, store: str, postgres_url: str, latency: float,
                    console: Console) -> Figures:
    """One store's run in a fresh process, so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_store, args=(send, size, store, postgres_url, latency),
                            name=f"bench-{store}")
    child.start()
    send.close()
    try:
        while True:
            kind, value = receive.recv()
            if kind == "say":
                console.print(value, highlight=False)
            elif kind == "failed":
                raise click.ClickException(f"the {store} run failed:\n{value}")
            else:
                return value
    except EOFError:
        raise click.ClickException(f"the {store} run died (exit code {child.exitcode})") from None
    finally:
        child.join()


def _run_store(send, size: Size, store: str, postgres_url: str,  # type: ignore[no-untyped-def]
               latency: float) -> None:
    import traceback

    from assistant.bench import scenario

    try:
        with tempfile.TemporaryDirectory(prefix="assistant-bench-") as folder, \
                _database(store, Path(folder), postgres_url) as url:
            figures = scenario.run(size, url, store, Path(folder), latency=latency,
                                   say=lambda line: send.send(("say", line)))
        send.send(("figures", figures))
    except Exception:
        send.send(("failed", traceback.format_exc()))


@contextmanager
def _database(store: str, folder: Path, postgres_url: str) -> Iterator[str]:
    """A fresh, empty database for one run, dropped after it."""
    if store == "sqlite":
        yield f"sqlite:///{folder / 'bench.sqlite3'}"
        return
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    server = make_url(postgres_url)
    plain = server.set(drivername="postgresql", database=server.database or "postgres"
                       ).render_as_string(hide_password=False)
    name = f"assistant_bench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(plain, autocommit=True)
    except psycopg.OperationalError as err:
        raise click.ClickException(
            f"cannot reach PostgreSQL at {server.render_as_string(hide_password=True)}: {err}; "
            f"pass --postgres-url or set {POSTGRES_URL_ENV}, or run --store sqlite") from err
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
