"""Real mail servers for the mail tests: Debian's Dovecot for IMAP, started in a temp folder.

Dovecot runs in the foreground in its own process group (so it and its children stop together),
as nobody, with plain-text logins on 127.0.0.1 only; tests/run.py installs it. Every user name
logs in with the one password (a static passdb), so each test simply uses a mailbox name of its
own: a passwd-file would be re-read only when its mtime changes, too coarse between tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from integrations.sandbox.server import free_port

DOVECOT_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""
NOBODY = 65534


class Dovecot:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        os.chmod(self.root, 0o755)
        (self.root / "mail").mkdir()
        if os.geteuid() == 0:
            os.chown(self.root / "mail", NOBODY, NOBODY)
        config = self.root / "dovecot.conf"
        config.write_text(DOVECOT_CONFIG.format(root=self.root, port=self.port,
                                                password=self.password))
        self._launch()
        return self

    def restart(self) -> None:
        """Killed (SIGKILL, mid-whatever) and started again on the same mail and port."""
        self._halt(signal.SIGKILL)
        self._launch()

    def stop(self) -> None:
        self._halt(signal.SIGTERM)
        shutil.rmtree(self.root, ignore_errors=True)

    def _launch(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.process = subprocess.Popen([binary, "-F", "-c", str(self.root / "dovecot.conf")],
                                        start_new_session=True)
        _wait_for_greeting(self.port, self.process, self.root / "dovecot.log")

    def _halt(self, how: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, how)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until Dovecot says "* OK": a listening port alone may still reset a new connection."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                if connection.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"dovecot did not greet on {port}")
