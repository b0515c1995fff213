"""Archive walk: stream the regular video files under ARCHIVE, never opening anything else.

The walk is a generator over an explicit stack of directories, so memory stays flat however many
files the archive holds (only the entries of the directories on the stack are alive). Entries are
visited in name order, so two walks of an unchanged archive yield the same sequence.

Only ``lstat``/``stat`` is ever called on an entry: FIFOs, sockets, devices and directories are
classified by mode and skipped, whatever their names, because opening a FIFO blocks forever.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator

from dfscan.scanner.config import DEFAULT_EXTENSIONS

MAX_KEPT_PROBLEMS = 1000  # problems beyond this are counted, not kept, so memory stays flat


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One regular video file, with the stat facts the incremental filter compares."""

    path: str  # relative to the archive, '/'-separated
    size: int
    mtime_ns: int
    inode: int


@dataclasses.dataclass
class WalkStats:
    """Counters of one walk. ``problems`` holds one line per unreadable directory or refused link."""

    files: int = 0  # regular video files yielded
    skipped_other: int = 0  # regular files without a video extension
    skipped_special: int = 0  # FIFOs, sockets, devices and directories with video names
    skipped_links: int = 0  # links not followed, leaving the archive, or closing a loop
    problem_count: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def problem(self, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(message)


def normalize_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """'MP4', '.mp4' and 'mp4' all mean '.mp4'."""
    out = set()
    for ext in extensions:
        ext = ext.strip().lower()
        if ext:
            out.add(ext if ext.startswith(".") else "." + ext)
    return frozenset(out)


def video_extension(name: str) -> str:
    """The lower-cased text from the last dot. Unlike os.path.splitext this gives '..mp4', '...mp4'
    and '.mp4' their extension: a name made only of dots and an extension must not hide a video."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def walk_archive(archive: str | os.PathLike, extensions: Iterable[str] = DEFAULT_EXTENSIONS,
                 follow_links: bool = False, stats: WalkStats | None = None,
                 on_problem: Callable[[str], None] | None = None) -> Iterator[FileEntry]:
    """Yield every regular file under ``archive`` whose extension is a video extension.

    With ``follow_links`` a symbolic link is followed only when its target resolves inside the
    archive, and a directory is entered at most once (keyed by device and inode), so link cycles end.
    Unreadable directories are reported through ``stats``/``on_problem`` and skipped.
    """
    stats = stats if stats is not None else WalkStats()
    wanted = normalize_extensions(extensions)
    root = os.path.realpath(os.fspath(archive))

    def report(message: str) -> None:
        stats.problem(message)
        if on_problem is not None:
            on_problem(message)

    root_st = os.stat(root)  # a missing archive is a usage error: let it raise
    if not stat.S_ISDIR(root_st.st_mode):
        raise NotADirectoryError(f"archive is not a directory: {archive}")
    seen_dirs = {(root_st.st_dev, root_st.st_ino)}
    stack: list[str] = [""]  # relative directory paths still to visit ('' is the archive itself)
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report(f"cannot list directory {rel_dir or '.'}: {exc.strerror or exc}")
            continue
        subdirs: list[str] = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                report(f"cannot stat {rel}: {exc.strerror or exc}")
                continue
            if stat.S_ISLNK(st.st_mode):
                if not follow_links:
                    stats.skipped_links += 1
                    continue
                target = os.path.realpath(entry.path)
                if not _inside(target, root):
                    stats.skipped_links += 1
                    report(f"link leaves the archive, not followed: {rel}")
                    continue
                try:
                    st = os.stat(target)
                except OSError as exc:  # dangling link, or a loop the kernel refuses to resolve
                    stats.skipped_links += 1
                    report(f"broken link {rel}: {exc.strerror or exc}")
                    continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:  # a link back to a visited directory: a loop or an alias
                    stats.skipped_links += 1
                    continue
                seen_dirs.add(key)
                subdirs.append(rel)
                continue
            if video_extension(entry.name) not in wanted:
                if stat.S_ISREG(st.st_mode):
                    stats.skipped_other += 1
                else:
                    stats.skipped_special += 1
                continue
            if not stat.S_ISREG(st.st_mode):  # FIFO, socket or device with a video name
                stats.skipped_special += 1
                continue
            stats.files += 1
            yield FileEntry(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)
        # Reversed so the stack pops subdirectories in name order: the walk is depth-first, sorted.
        stack.extend(reversed(subdirs))


def resolve_archive(archive: str | os.PathLike) -> Path:
    """The archive path as stored in every row: absolute, links resolved, so reruns match."""
    return Path(os.path.realpath(os.fspath(archive)))
