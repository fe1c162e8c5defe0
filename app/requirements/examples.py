"""Bundled example specs (``examples/*.yaml`` at the repository root).

Examples are addressed by their file stem (``llm-finetune-hipaa``); only names that exist
in the directory listing are opened, so a name can never escape the directory.

Note: ``examples/`` lives outside the ``app`` package, so a wheel built from the current
``pyproject.toml`` does not contain it; pass ``directory=`` to use another location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from app.requirements.spec import WorkloadSpec, load_spec

__all__ = [
    "EXAMPLES_DIR",
    "ExampleInfo",
    "example_path",
    "example_text",
    "list_examples",
    "load_example",
]

#: ``<repo>/examples``
EXAMPLES_DIR: Final[Path] = Path(__file__).resolve().parents[2] / "examples"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class ExampleInfo:
    """One bundled example: ``name`` (file stem), spec ``title`` and first description line."""

    name: str
    path: Path
    title: str
    summary: str


def _example_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {
        p.stem: p
        for p in sorted(directory.glob("*.yaml"))
        if p.is_file() and _NAME_RE.match(p.stem)
    }


def example_path(name: str, directory: Path | None = None) -> Path:
    """Path of the example called ``name``. Raises :class:`KeyError` if there is none."""
    files = _example_files(directory or EXAMPLES_DIR)
    try:
        return files[name]
    except KeyError:
        raise KeyError(
            f"no example named {name!r}; available: {', '.join(files) or 'none'}"
        ) from None


def example_text(name: str, directory: Path | None = None) -> str:
    """Raw YAML text of an example (comments included)."""
    return example_path(name, directory).read_text(encoding="utf-8")


def load_example(name: str, directory: Path | None = None) -> WorkloadSpec:
    """Load and validate an example by name."""
    return load_spec(example_path(name, directory))


def list_examples(directory: Path | None = None) -> list[ExampleInfo]:
    """Every example, sorted by name (each one loaded and validated)."""
    out = []
    for name, path in _example_files(directory or EXAMPLES_DIR).items():
        spec = load_spec(path)
        summary = next((line.strip() for line in spec.description.splitlines() if line.strip()), "")
        out.append(ExampleInfo(name=name, path=path, title=spec.name, summary=summary))
    return out
