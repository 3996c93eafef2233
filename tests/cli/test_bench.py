"""The benchmark at its quick size, on both stores: every phase runs, and its counts hold.

Its timings are the benchmark's to report (README, "Performance"), never asserted here; what
is checked is what the figures claim: each new meeting asked about once by poll and once by
push, one API call per calendar in an idle cycle, and batches as full as promised.
"""

from __future__ import annotations

import json
import subprocess
import sys

from assistant.bench.figures import QUICK


def test_the_quick_benchmark_runs_every_phase_on_both_stores(postgres_cluster):
    done = subprocess.run(
        [sys.executable, "-m", "assistant.bench", "--quick", "--json",
         "--postgres-url", postgres_cluster.url],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [run["store"] for run in runs] == ["sqlite", "postgresql"]
    for run in runs:
        targets, facts = run["targets"], run["facts"]
        assert run["calendars"] == 2 * QUICK.calendars
        for counted in ("API calls in one idle cycle, per calendar",
                        "Google calendars per round trip", "Outlook mailboxes per round trip"):
            assert targets[counted]["met"], (run["store"], counted, targets[counted])
        assert facts["burst emails accepted by SMTP"] == QUICK.burst
        assert facts["push emails accepted by SMTP"] == QUICK.pushed
        assert 0 < targets["peak memory of the worker (RSS)"]["value"] < 1000
        assert facts["a fixed CPU task, before and after (host's speed)"] > 0
