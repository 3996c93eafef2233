"""Secrets are read only from files nobody but their owner can read."""

from __future__ import annotations

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
