"""Run the whole test suite on a fresh machine: `python3 tests/run.py [pytest args]`.

Creates the project's virtualenv (.venv, or $ASSISTANT_VENV) when it is missing, installs the
project with its test extras when pyproject.toml changed since the last install, installs the
Debian packages of the real servers and browser the tests start (Dovecot for IMAP, PostgreSQL
for the database, Chromium for the admin page), then runs pytest inside the virtualenv.
Whatever a test needs is installed here, so CI and a new developer run exactly the same thing.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("ASSISTANT_VENV", ROOT / ".venv"))
PYTHON = VENV / "bin" / "python"
# Debian packages whose servers the tests start themselves: package -> is it installed?
DEBIAN_SERVERS: dict[str, Callable[[], bool]] = {
    "dovecot-imapd": lambda: bool(shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists()),
    # Debian keeps PostgreSQL's server off PATH, in a folder per major version.
    "postgresql": lambda: bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")),
    # The admin page's browser tests drive Debian's chromium (Playwright's own browser
    # downloads are not reachable here, and CI should test the browser admins run).
    "chromium": lambda: Path("/usr/bin/chromium").exists(),
}


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by any python3
        print(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    ensure_virtualenv()
    ensure_installed()
    ensure_servers()
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


def ensure_servers() -> None:
    """apt-get install the servers the tests run (they start their own, never the system's)."""
    missing = [package for package, installed in DEBIAN_SERVERS.items() if not installed()]
    if not missing:
        return
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
    print(f"installing {', '.join(missing)} from Debian", flush=True)
    quiet = {"DEBIAN_FRONTEND": "noninteractive", **os.environ}
    subprocess.run([*apt, "-qq", "update"], check=True, env=quiet, stdout=subprocess.DEVNULL)
    subprocess.run([*apt, "-qq", "install", "-y", "--no-install-recommends", *missing],
                   check=True, env=quiet, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
