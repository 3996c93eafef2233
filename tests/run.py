"""Run the whole test suite on a fresh machine: `python3 tests/run.py [pytest args]`.

Creates the project's virtualenv (.venv, or $ASSISTANT_VENV) when it is missing, installs the
project with its test extras when pyproject.toml changed since the last install, then runs
pytest inside it. Whatever else a test needs is installed by this script, so CI and a new
developer run exactly the same thing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("ASSISTANT_VENV", ROOT / ".venv"))
PYTHON = VENV / "bin" / "python"


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by any python3
        print(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    ensure_virtualenv()
    ensure_installed()
    pytest = [str(PYTHON), "-m", "pytest", *sys.argv[1:]]
    return subprocess.call(pytest, cwd=ROOT)


def ensure_virtualenv() -> None:
    if not PYTHON.exists():
        print(f"creating the virtualenv {VENV}", flush=True)
        venv.create(VENV, with_pip=True)


def ensure_installed() -> None:
    """pip install -e .[test], skipped when pyproject.toml is unchanged since the last time."""
    stamp = VENV / ".assistant-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing the project and its test tools", flush=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--editable", f"{ROOT}[test]"],
        check=True,
    )
    stamp.write_text(digest)


if __name__ == "__main__":
    sys.exit(main())
