"""Nothing lost, nothing doubled, no human edit overwritten, no secret logged: through provider
faults, mail faults, expired cursors, a suspended user, SIGKILLs and server restarts, on each
store (see harness.py for what the run does, conftest.py for its sizes).

Each run's figures are printed and written to chaos-<store>.json in the test's folder, and to
$CHAOS_FIGURES_DIR when set: the README's Guarantees table quotes the last full run.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.chaos.conftest import SIZES
from tests.chaos.harness import ChaosRun, Figures


def test_one_worker_on_sqlite_does_everything_exactly_once_through_chaos(tmp_path, chaos_size):
    size = SIZES[(chaos_size, "sqlite")]
    figures = ChaosRun(tmp_path, size, "sqlite", f"sqlite:///{tmp_path / 'assistant.db'}").run()
    _report(figures, tmp_path)
    assert figures.kills == size.kills


def test_several_workers_on_postgresql_do_everything_exactly_once_through_chaos(
    tmp_path, chaos_size, postgres_cluster
):
    size = SIZES[(chaos_size, "postgresql")]
    database_url = postgres_cluster.create_database(f"chaos_{os.getpid()}_{chaos_size}")
    figures = ChaosRun(tmp_path, size, "postgresql", database_url,
                       restart_database=postgres_cluster.restart).run()
    _report(figures, tmp_path)
    assert figures.kills == size.kills and "database" in figures.restarts


def _report(figures: Figures, folder: Path) -> None:
    text = figures.as_json()
    print(text)
    for where in filter(None, [folder, os.environ.get("CHAOS_FIGURES_DIR")]):
        Path(where, f"chaos-{figures.store}.json").write_text(text)
