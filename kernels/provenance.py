"""Provenance: which dfscan (and which checkout) and which libraries produced a card, a row or an export."""

from __future__ import annotations

import platform
from pathlib import Path

def dfscan_version() -> str:
    """The installed dfscan's version, for provenance (model cards, the app's exports), with the commit
    of the checkout it runs from where there is one ("0.1.0+g070ab4a1b2c3"); "source" in a checkout that
    was not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("dfscan")
    except PackageNotFoundError:
        installed = "source"
    commit = source_commit()
    return f"{installed}+g{commit[:12]}" if commit else installed


def source_commit(root: Path | None = None) -> str | None:
    """The git commit of the checkout holding this file (an editable install), read from ``.git`` without
    running git; None for an installed wheel or anything unreadable."""
    root = root or Path(__file__).resolve().parents[1]
    try:
        git = root / ".git"
        if git.is_file():  # a worktree: ".git" names its folder
            git = (root / git.read_text().split("gitdir:", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if len(head) == 40 else None
        ref = head[4:].strip()
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()[:40]
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return None


def library_versions(names: tuple[str, ...] = ("numpy", "av", "keras", "pyarrow", "ray", "nvidia.dali",
                                               "PyNvVideoCodec", "tensorflow", "jax")) -> dict[str, str]:
    """Python's, dfscan's and each importable library's version (those not installed are left out), and
    Keras's backend: what a model card and a benchmark report record."""
    import importlib

    versions = {"python": platform.python_version(), "dfscan": dfscan_version()}
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - absent, or broken on this machine: not recorded
            continue
        versions[name] = str(getattr(module, "__version__", "unknown"))
        if name == "keras":
            versions["backend"] = module.backend.backend()
    return versions
