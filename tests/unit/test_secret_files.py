"""Secrets are read only from files nobody but their owner can read, and written whole."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap

import pytest

from assistant.errors import ConfigError
from assistant.secret_files import read_owner_only, write_owner_only


def test_a_secret_file_others_may_read_is_refused_with_the_fix(tmp_path):
    key = tmp_path / "google-key.json"
    write_owner_only(key, '{"private_key": "..."}')
    assert read_owner_only(key, "google.service_account_key_file") == b'{"private_key": "..."}'
    for mode in (0o640, 0o604, 0o644):
        key.chmod(mode)
        with pytest.raises(ConfigError) as refused:
            read_owner_only(key, "google.service_account_key_file")
        assert refused.value.path == "google.service_account_key_file"
        assert f"chmod 600 {key}" in str(refused.value) and f"{mode:o}" in str(refused.value)


def test_a_write_that_fails_part_way_leaves_the_old_file_whole(tmp_path):
    """A real short write: the child may not grow a file past 64 KiB (RLIMIT_FSIZE), as on a
    full disk. The token cache it was replacing is still there, whole, and nothing is left."""
    cache = tmp_path / "microsoft-token-cache.json"
    write_owner_only(cache, '{"RefreshToken": "the sign-in"}')
    child = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from assistant.secret_files import write_owner_only
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        try:
            write_owner_only(Path({str(cache)!r}), "x" * 200_000)
        except OSError as err:
            sys.exit(f"refused: {{err.strerror}}")
    """)
    ran = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 1 and "refused: File too large" in ran.stderr, ran.stderr
    assert cache.read_text() == '{"RefreshToken": "the sign-in"}'
    assert [path.name for path in tmp_path.iterdir()] == [cache.name]


def test_a_link_in_place_of_the_file_is_replaced_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not ours to change")
    link = tmp_path / "token.json"
    link.symlink_to(elsewhere)
    write_owner_only(link, "secret")
    assert elsewhere.read_text() == "not ours to change"
    assert not link.is_symlink() and link.read_text() == "secret"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600

