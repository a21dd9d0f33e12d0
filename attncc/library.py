"""The bundled spec library: find specs by name, list them with their one-line summaries."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from attncc.diagnostics import NameError_, did_you_mean

_REPO_SPECS = Path(__file__).resolve().parents[1] / "specs"


def library_dir() -> Path:
    """The folder of bundled specs: attncc/_specs in a wheel, specs/ in a source checkout."""
    packaged = Path(str(resources.files("attncc").joinpath("_specs")))
    if packaged.is_dir():
        return packaged
    return _REPO_SPECS


def spec_paths() -> list[Path]:
    return sorted(library_dir().glob("*.attn"))


def find_spec(name: str) -> Path:
    """`cbam` -> the bundled specs/cbam.attn, with a did-you-mean for unknown names."""
    paths = {p.stem: p for p in spec_paths()}
    key = name.lower().removesuffix(".attn")
    if key in paths:
        return paths[key]
    raise NameError_(f"no bundled spec named `{name}`", hints=did_you_mean(key, paths, "spec"))


def summary(path: Path) -> str:
    """The first comment line of a spec: its title."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
