"""The case templates shipped with smda, and ``smda init``.

The YAML files of the repository's ``namelists/`` folder install as the package data ``smda.namelists``;
``smda init NAME --template T`` copies template T into a new folder ``NAME/NAME.yaml`` with its case
name set to NAME and its outputs in ``NAME/out``. Input files a template names (product samples, station
forcing) are not shipped: the new case lists the keys to edit.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

from smda.run.guard import temporary_path
from smda.run.namelist import NAME_PATTERN, NamelistError, load, missing_inputs

log = logging.getLogger(__name__)


def templates() -> dict:
    """Template name (the file name without ``.yaml`` and ``_template``) -> its text."""
    folder = resources.files("smda.namelists")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return {f.name.removesuffix(".yaml").removesuffix("_template"): f.read_text() for f in files}


def listing() -> str:
    """One line per template: its name and the first line of its header comment."""
    rows = []
    for name, text in templates().items():
        first = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), "")
        rows.append(f"{name:18s} {first}")
    return "templates (smda init NAME --template T):\n  " + "\n  ".join(rows)


def init(name: str, template: str = "osse_default", parent: Path | None = None) -> Path:
    """Write ``parent/name/name.yaml`` (``parent``: the current folder) from ``template``; its path."""
    if not NAME_PATTERN.fullmatch(name):
        raise NamelistError([f"case name {name!r}: use letters, digits, '.', '_' and '-' only"], "(command line)")
    texts = templates()
    if template not in texts:
        raise NamelistError([f"--template {template!r}: not a template; valid: {', '.join(texts)}"], "(command line)")
    folder = (Path.cwd() if parent is None else Path(parent)) / name
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty: choose another case name")
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", texts[template])
    if re.search(r"(?m)^output:", text):
        text = re.sub(r"(?m)^  dir: .*$", "  dir: out", text) if re.search(r"(?m)^  dir: ", text) else \
            re.sub(r"(?m)^output:\n", "output:\n  dir: out\n", text)
    else:
        text += "output:\n  dir: out\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    tmp = temporary_path(path)
    tmp.write_text(text)
    tmp.replace(path)
    for key, msg in missing_inputs(load(path)):
        log.warning("%s: edit %s: %s", path, ".".join(key), msg)
    log.info("wrote %s (from template %s); run it with: smda run %s", path, template, path)
    return path
