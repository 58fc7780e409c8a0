"""The YAML recipes shipped inside the package, and resolution of bare recipe names to files."""

from __future__ import annotations

import difflib
from pathlib import Path

SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[Path]:
    """Every YAML recipe shipped inside the package, sorted by relative path."""
    return sorted(SHIPPED_CONFIGS.rglob("*.yaml"))


def resolve_config(name: str) -> str:
    """Map a ``--config`` value to a file: an existing path wins, else a shipped recipe by name or relative path.

    ``vitl_ssv2_probe.yaml``, ``vitl_ssv2_probe`` and ``probe/vitl_ssv2_probe.yaml`` all resolve to the shipped
    file when no such file exists in the working directory.

    Raises:
        FileNotFoundError: no file and no shipped recipe of that name (close names are suggested).
        ValueError: the bare name matches several shipped recipes (the relative paths are listed).
    """
    if Path(name).is_file():
        return name
    wanted = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates = shipped_configs()
    relative = {path.relative_to(SHIPPED_CONFIGS).as_posix(): path for path in candidates}
    if wanted in relative:
        return str(relative[wanted])
    matches = [path for rel, path in relative.items() if rel.split("/")[-1] == wanted]
    if len(matches) == 1:
        return str(matches[0])
    if len(matches) > 1:
        listed = ", ".join(sorted(path.relative_to(SHIPPED_CONFIGS).as_posix() for path in matches))
        raise ValueError(f"config {name!r} matches several shipped recipes: {listed}; give the relative path")
    close = difflib.get_close_matches(wanted, [rel.split("/")[-1] for rel in relative] + list(relative), n=5)
    hint = f" Close shipped recipes: {', '.join(close)}." if close else ""
    raise FileNotFoundError(
        f"config {name!r} is neither a file (looked in {Path.cwd()}) nor a shipped recipe.{hint} "
        "`jepa configs` lists the shipped recipes."
    )
