"""Files holding secrets (keys, tokens, token caches): readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

from assistant.errors import ConfigError

_OTHERS = 0o077  # the group's and everyone's permission bits


def write_owner_only(path: Path, data: bytes | str) -> None:
    """Write data (text as UTF-8) that only its owner may read, from the first byte on.

    The mode is set on the open file as well, because O_CREAT's mode does not apply to a file
    that already exists (one written earlier, perhaps more openly).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data.encode() if isinstance(data, str) else data)


def readable_by_others(path: Path) -> bool:
    """True when anyone but the file's owner may read or write it (group or world bits)."""
    return bool(path.stat().st_mode & _OTHERS)


def read_owner_only(path: Path, key: str) -> bytes:
    """The bytes of a secret file that only its owner may read; ConfigError (naming the config
    key) when anyone else may: a key others can read has, for all we know, been read.

    OSError (no such file, no permission) is the caller's to explain.
    """
    mode = path.stat().st_mode
    if mode & _OTHERS:
        raise ConfigError(key, [
            f"{path} may be read by others (mode {mode & 0o777:o}), and it holds a secret: "
            f"run `chmod 600 {path}` (on Kubernetes, mount the secret with defaultMode 0400)"])
    return path.read_bytes()
