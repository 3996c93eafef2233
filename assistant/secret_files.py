"""Files holding secrets (keys, tokens, token caches): readable by their owner only."""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path

from assistant.errors import ConfigError

_OTHERS = 0o077  # the group's and everyone's permission bits
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows has no such flag


def write_owner_only(path: Path, data: bytes | str) -> None:
    """Write data (text as UTF-8) that only its owner may read, from the first byte on, and
    atomically: path holds either its old bytes or all the new ones, never part of them.

    The new bytes go to a temporary file beside path, created anew (O_EXCL: never someone
    else's file; O_NOFOLLOW: never through a link), made durable, then renamed over path. A
    full disk or a kill part-way leaves the old file (a token cache: the sign-in) as it was.
    A symbolic link at path is replaced, not followed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def create_owner_only(path: Path) -> bool:
    """Create path as an empty file only its owner may read; False if it exists already."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600))
    except FileExistsError:
        return False
    return True


def _sync_folder(folder: Path) -> None:
    """Make a rename in folder durable (POSIX; Windows has no folder to open). Some
    filesystems cannot sync a folder: the file itself is synced already."""
    with suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


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
