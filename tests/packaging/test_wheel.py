"""A plain (non-editable) wheel install finds its templates and config without the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("meeting_format_assistant-*.whl")
    return built


def test_wheel_carries_templates_and_default_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "assistant/_bundled/templates/annotation.txt.j2" in names
    assert "assistant/_bundled/templates/annotation.html.j2" in names
    assert "assistant/_bundled/config/checklist.toml" in names
    assert "assistant/_bundled/config/assistant.example.toml" in names
    for language in ("de", "fr", "es"):  # compiled in memory when used: the .po files only
        assert f"assistant/language/locales/{language}/LC_MESSAGES/assistant.po" in names
    assert "integrations/google_event.py" in names
    assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_runs_away_from_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Only the installed copy and the dependencies are importable: not the checkout.
    path = [str(target), *(p for p in sys.path if p and Path(p).resolve() != ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONSAFEPATH": "1"}
    event = ROOT / "config" / "examples" / "google-event.json"
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "preview", str(event), "--json"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changes"]["description"].startswith("──── Meeting format")
    where = subprocess.run(
        [sys.executable, "-c", "import assistant.resources as r; print(r.templates_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )
    assert where.stdout.strip().startswith(str(target))


def test_installed_wheel_plays_the_demo_with_its_migrations_and_templates(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = [str(target), *(p for p in sys.path if p and Path(p).resolve() != ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONSAFEPATH": "1"}
    result = subprocess.run([sys.executable, "-m", "assistant", "demo"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "60 minutes became 50" in result.stdout
    assert (elsewhere / "assistant-demo" / "report.html").exists()
