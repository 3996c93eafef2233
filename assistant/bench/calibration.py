"""How fast this machine runs Python at the moment: a fixed piece of CPU work, timed.

A virtual machine gets a share of its host's CPU that varies with the neighbours, and may not
see it (vmstat's `st` stayed 0 on this project's VM while this task took from 0.45 s to 0.85 s
within minutes). The benchmark times it before and after each run, so a table can be read
against the speed the machine had while it was measured.
"""

from __future__ import annotations

import json
import time

_DOCUMENT = {f"k{i}": list(range(20)) for i in range(2_000)}


def reference_task_seconds() -> float:
    """CPU seconds for a fixed mix of JSON and sorting, like the worker's own work."""
    start = time.process_time()
    for _ in range(60):
        json.loads(json.dumps(_DOCUMENT))
        sorted(str(i) for i in range(20_000))
    return time.process_time() - start
