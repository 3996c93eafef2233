"""A real, throwaway PostgreSQL server for the tests that need a database.

The tests run against a real PostgreSQL, never a mock or SQLite: locking (FOR UPDATE SKIP LOCKED),
transactions and a server restarting mid-run behave only as the real server does. One cluster
per test session keeps the suite fast (initdb is most of its 0.6 s start); every test still gets
a fresh database of its own. tests/run.py installs Debian's postgresql package; set
ASSISTANT_TEST_POSTGRES_URL (e.g. postgresql+psycopg://user@host:5432) to use a running server.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from integrations.sandbox.server import free_port

SERVER_URL_ENV = "ASSISTANT_TEST_POSTGRES_URL"
# No fsync: a throwaway cluster needs no durability against power loss. synchronous_commit stays
# on: with fsync off it costs nothing measurable, and off, restart() (-m immediate) would lose
# commits already acknowledged in the last 200 ms, which a real server restarting never does.
SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "200",
            "listen_addresses": "127.0.0.1"}


def postgres_bindir() -> Path | None:
    """The newest installed server's bin folder (Debian's layout first), or None."""
    def version(bindir: str) -> tuple[int, ...]:
        return tuple(int(part) for part in Path(bindir).parent.name.split(".") if part.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if shutil.which("pg_config"):
        asked = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        found.append(asked.stdout.strip())
    return next((Path(d) for d in found if d and Path(d, "initdb").exists()), None)


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="postgres-"))
        self.data = self.root / "data"
        self._port = free_port()
        self.url = f"postgresql+psycopg://test@127.0.0.1:{self._port}"
        # initdb and postgres refuse to run as root, so root runs them as the postgres user.
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> PostgresCluster:
        if not self.data.exists():
            self._run("initdb", "-D", self.data, "-U", "test", "--auth=trust", "-E", "UTF8",
                      "--no-locale", "--no-sync")
        # -k: the socket goes in our folder; the default, /var/run/postgresql, may not be ours.
        options = " ".join([f"-p {self._port} -k {self.root}",
                            *(f"-c {name}={value}" for name, value in SETTINGS.items())])
        self._run("pg_ctl", "-D", self.data, "-l", self.root / "log", "-w", "-o", options, "start")
        return self

    def stop(self) -> None:
        if self.root.exists():
            self._halt()
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Stop as abruptly as a crash (-m immediate), then start on the same data and port."""
        self._halt()
        self.start()

    def create_database(self, name: str) -> str:
        return create_database(self.url, name)

    def _halt(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def _run(self, program: str, *args: str | Path) -> None:
        command = [*self.as_owner, str(self.bindir / program), *map(str, args)]
        # Output to a file, not a pipe: the server pg_ctl leaves running could hold a pipe open.
        with tempfile.TemporaryFile("w+") as output:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=subprocess.STDOUT)
            if done.returncode != 0:
                output.seek(0)
                log = self.root / "log"
                raise RuntimeError(f"{program} failed:\n{output.read()}"
                                   f"{log.read_text() if log.exists() else ''}")


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE name on the server; its SQLAlchemy URL."""
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                         dbname="postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.fail("no PostgreSQL server found under /usr/lib/postgresql/*/bin or pg_config: "
                    "`python3 tests/run.py` installs Debian's postgresql package", pytrace=False)
    cluster = PostgresCluster(bindir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture()
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of this test's own, on $ASSISTANT_TEST_POSTGRES_URL or the cluster."""
    server = os.environ.get(SERVER_URL_ENV) or request.getfixturevalue("postgres_cluster").url
    return create_database(server, f"test_{secrets.token_hex(6)}")
