"""What every command shares: where the config file is, JSON output, the --config option."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant import resources
from assistant.config import Config, load_config
from assistant.errors import InputError

DEFAULT_CONFIG_NAME = "assistant.toml"
CONFIG_ENV = "ASSISTANT_CONFIG"
F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    """--config FILE, defaulting to $ASSISTANT_CONFIG, then ./assistant.toml."""
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
        help=f"Config file (default: ${CONFIG_ENV}, then ./{DEFAULT_CONFIG_NAME}).",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON.")(function)


def config_path_or_default(path: Path | None) -> Path:
    """The config file named, or $ASSISTANT_CONFIG, or ./assistant.toml; InputError if none."""
    if path is not None:
        return path
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    path = Path(DEFAULT_CONFIG_NAME)
    if not path.exists():
        raise InputError(
            f"no config file given, ${CONFIG_ENV} is not set and there is no "
            f"./{DEFAULT_CONFIG_NAME}; start from a copy of {resources.example_config_path()}"
        )
    return path


def load_config_or_default(path: Path | None) -> tuple[Path, Config]:
    found = config_path_or_default(path)
    return found, load_config(found)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
