"""The bundled spec library: find specs by name, list them with their one-line summaries."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


# the survey's sections: §3.1 channel attention ... §3.6 spatial & temporal attention
CATEGORIES = {
    "3.1": "channel",
    "3.2": "spatial",
    "3.3": "temporal",
    "3.4": "branch",
    "3.5": "channel & spatial",
    "3.6": "spatial & temporal",
    "4.1": "general",
}


@dataclass(frozen=True)
class SpecInfo:
    """What a spec's header says about it: `# Paper:` and `# Survey:` fields, and the title."""

    name: str
    path: Path
    title: str
    paper: str
    survey: str
    code: str = ""

    @property
    def category(self) -> str:
        m = re.search(r"§(\d+\.\d+)", self.survey)
        return CATEGORIES.get(m.group(1), "") if m else ""

    @property
    def citation(self) -> str:
        """`Hu et al., CVPR 2018`: the first author's surname and the first venue and year."""
        authors = self.paper.split('"')[0]
        first = re.search(r"(?:[A-Z]\.[- ]?)+\s*([A-Z][\w'-]+)", authors)
        # `..., ICCV 2017`, `..., IEEE TPAMI 2022`, `..., IEEE TIP 27(3), 2018`
        venue = re.search(r'"[^"]*"\s*,?\s*([A-Za-z]+(?: [A-Za-z]+)?)\s*'
                          r"(?:\d+\(\d+\))?,?\s+(\d{4})", self.paper)
        who = f"{first.group(1)} et al." if first else ""
        where = f"{venue.group(1)} {venue.group(2)}" if venue else ""
        return ", ".join(x for x in (who, where) if x)


def spec_info(path: Path) -> SpecInfo:
    fields: dict[str, list[str]] = {}
    current = None
    title = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        raw = line[1:]
        text = raw.strip()
        if not title:
            title = text
        if raw.startswith("  ") and current:  # an indented line continues the field
            fields[current].append(text)
            continue
        m = re.match(r"(\w+):\s*(.*)", text)
        key = m.group(1).removesuffix("s") if m else None  # `Papers:` for two-paper specs
        current = key if key in ("Paper", "Survey", "Code") else None
        if current:
            fields[current] = [m.group(2)]
    join = lambda k: " ".join(fields.get(k, []))  # noqa: E731
    return SpecInfo(path.stem, path, title, join("Paper"), join("Survey"), join("Code"))
