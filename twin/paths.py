"""Where the twin's data folders live, in a source checkout and in an installed wheel.

The repository keeps ``models/``, ``networks/`` and ``validation/`` at its top level (DESIGN.md); the wheel
carries the same folders under ``twin/_data/``. A user's own case may sit anywhere: its models are looked up
first beside it (``<case dir>/models`` or ``<case dir>/../models``), then in the embedded set.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_root() -> Path:
    """Folder holding ``models/``, ``networks/`` and ``validation/`` (checkout first, then the wheel)."""
    for root in (_PKG.parent, _PKG / "_data"):
        if (root / "models").is_dir() and (root / "networks").is_dir():
            return root
    raise FileNotFoundError(
        f"twin data folders not found next to {_PKG} (expected models/ and networks/ in the checkout or "
        "twin/_data/ in the installed wheel): reinstall the package"
    )


def models_dir() -> Path:
    return data_root() / "models"


def networks_dir() -> Path:
    return data_root() / "networks"


def validation_dir() -> Path:
    return data_root() / "validation"


DEFAULT_CASE = "shanghai_campus"


def resolve_case_path(case: str | os.PathLike | None) -> Path:
    """Path of a case given as a file path, or as the name of an embedded case (``shanghai_campus``)."""
    if case is None:
        case = DEFAULT_CASE
    p = Path(case)
    if p.suffix == ".toml" or p.exists():
        return p
    embedded = networks_dir() / f"{case}.toml"
    if embedded.exists():
        return embedded
    known = sorted(q.stem for q in networks_dir().glob("*.toml"))
    raise FileNotFoundError(f"case '{case}': no such file, and no embedded case of that name (embedded: {known})")


def shared_data_dir() -> Path | None:
    """The measured field data (``../shared/data`` beside the checkout), or ``$TWIN_DATA`` when set."""
    env = os.environ.get("TWIN_DATA")
    if env:
        return Path(env)
    cand = _PKG.parent.parent / "shared" / "data"
    return cand if cand.is_dir() else None
