"""Where the shipped templates and default config live, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE_DIR / "_bundled"  # filled by the wheel build (see pyproject.toml)
_CHECKOUT = _PACKAGE_DIR.parent  # the repository root when running from source


def _shipped_dir(name: str) -> Path:
    for root in (_BUNDLED, _CHECKOUT):
        candidate = root / name
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the assistant's {name}/ folder is missing from {_BUNDLED} and {_CHECKOUT}; "
        "reinstall the package"
    )


def templates_dir() -> Path:
    """The folder of Jinja2 templates the assistant renders every text from."""
    return _shipped_dir("templates")


def config_dir() -> Path:
    """The folder of shipped config: the checklist, the example config and example events."""
    return _shipped_dir("config")


def default_checklist_path() -> Path:
    return config_dir() / "checklist.toml"


def example_config_path() -> Path:
    return config_dir() / "assistant.example.toml"
