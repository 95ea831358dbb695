"""Deploy sources: archives (tar, compressed tar, zip) checked before anything
is written, then extracted without ever following a link out of the target;
and checked-out trees (git deploys), checked by the same rules before any of
their files reaches a release.

Standard library only: the panel imports this module to refuse a bad upload
at once, and the node runs it again before extracting (it never trusts what
it is sent) and on every git checkout.

What is refused, with every problem named (the same for an archive and for a
tree):
- absolute names, names with a ``..`` component, backslashes or NUL bytes;
- hard links, device files, FIFOs and other special entries;
- symbolic links that are absolute, that lead outside the archive, or whose
  way passes through another link (a link to a link could lead out);
- entries inside a linked or a file path, and names that appear twice;
- more members or more unpacked bytes than the limits (archives).

An archive's single wrapping top directory (as in ``site-main/...``) is
stripped BEFORE the links are checked: a link is judged where it will lie, so
``wrap/themes/up -> ../..`` (inside the archive, one level above the tree that
is laid out) is refused.

Recognised layouts (after the wrapper is stripped): a whole WordPress tree
(``wp-includes/`` and ``wp-content/``), a ``wp-content/`` directory, or a bare
wp-content tree (``themes/``, ``plugins/`` or ``mu-plugins/`` at the top).
"""

from __future__ import annotations

import lzma
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field

MAX_MEMBERS = 100_000
KNOWN_TOP = {"wp-content", "wp-includes", "wp-admin", "themes", "plugins", "mu-plugins"}
DRIVE = re.compile(r"^[A-Za-z]:")
CHUNK = 1024 * 1024


class ArchiveRejected(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        super().__init__(shown)


@dataclass
class Member:
    name: str  # relative, normalised, "/"-separated, wrapper stripped
    kind: str  # file | dir | symlink
    size: int
    executable: bool
    link: str = ""
    entry: object = None  # the TarInfo or ZipInfo to read it from


@dataclass
class Inspection:
    format: str
    layout: str
    members: list[Member] = field(default_factory=list)
    total_bytes: int = 0


def clean_name(raw: str) -> tuple[str | None, str | None]:
    """(normalised name, None) or (None, problem); ("", None) for the root entry."""
    if "\x00" in raw or "\\" in raw:
        return None, f"{raw!r}: backslash or NUL in the name"
    if raw.startswith("/") or DRIVE.match(raw):
        return None, f"{raw!r}: absolute path"
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, f"{raw!r}: refers to a parent directory (..)"
    return "/".join(parts), None


def _read_tar(path: str, max_members: int):
    archive = tarfile.open(path, "r:*")
    entries, problems = [], []
    for info in archive:
        if len(entries) + len(problems) > max_members:
            break  # enough to refuse it; reading on could take long
        if info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.isfile():
            kind = "file"
        elif info.islnk():
            problems.append(f"{info.name!r}: hard links are not accepted")
            continue
        else:
            problems.append(f"{info.name!r}: special files (devices, FIFOs) are not accepted")
            continue
        entries.append((info.name, kind, info.size if kind == "file" else 0, bool(info.mode & 0o111),
                        info.linkname if kind == "symlink" else "", info))
    return "tar", entries, problems, archive


def _read_zip(path: str, max_members: int):
    archive = zipfile.ZipFile(path)
    entries, problems = [], []
    for info in archive.infolist()[: max_members + 1]:
        unix_mode = info.external_attr >> 16
        if info.is_dir():
            kind = "dir"
        elif stat.S_ISLNK(unix_mode):
            kind = "symlink"
        elif stat.S_IFMT(unix_mode) and not stat.S_ISREG(unix_mode):
            # Permission bits without a file type (as Python's zipfile writes them) are a plain file.
            problems.append(f"{info.filename!r}: special files are not accepted")
            continue
        else:
            kind = "file"
        link = archive.read(info).decode("utf-8", "replace") if kind == "symlink" else ""
        entries.append((info.filename, kind, info.file_size if kind == "file" else 0, bool(unix_mode & 0o111),
                        link, info))
    return "zip", entries, problems, archive


# What a damaged or truncated archive raises while it is read.
DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, ValueError)


def open_archive(path: str, max_members: int = MAX_MEMBERS):
    """(format, raw entries, problems, open archive object)."""
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, max_members)
        if tarfile.is_tarfile(path):
            return _read_tar(path, max_members)
    except DAMAGED + (OSError,) as exc:
        raise ArchiveRejected([f"the archive is damaged: {exc}"]) from None
    raise ArchiveRejected(["not a tar, compressed tar or zip archive"])


def _link_stays_inside(name: str, target: str, links: set[str]) -> bool:
    """Walk the link's target from the link's directory: never above the
    archive root, never through another link."""
    if not target or target.startswith("/") or "\x00" in target or "\\" in target:
        return False
    directory = posixpath.dirname(name)
    parts = directory.split("/") if directory else []
    for component in target.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                return False
            parts.pop()
            continue
        parts.append(component)
        if "/".join(parts) in links:
            return False
    return True


def structure_problems(members: list[Member], outside: str = "the archive") -> list[str]:
    """The rules between entries, for archives and checked-out trees alike:
    nothing inside a link or a file; every link relative, staying inside the
    tree and never passing through another link. ``members`` carry their
    names as they will be laid out."""
    problems = []
    kinds = {m.name: m.kind for m in members}
    links = {name for name, kind in kinds.items() if kind == "symlink"}
    for member in members:
        parts = member.name.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if kinds.get(prefix) == "symlink":
                problems.append(f"{member.name!r}: lies inside the symbolic link {prefix!r}")
                break
            if kinds.get(prefix) == "file":
                problems.append(f"{member.name!r}: lies inside the file {prefix!r}")
                break
        if member.kind == "symlink" and not _link_stays_inside(member.name, member.link, links):
            problems.append(f"{member.name!r}: symbolic link to {member.link!r} leads outside {outside}")
    return problems


def _strip_wrapper(members: list[Member]) -> list[Member]:
    tops = {member.name.split("/", 1)[0] for member in members}
    if len(tops) != 1:
        return members
    top = tops.pop()
    wrapper = [m for m in members if m.name == top]
    if top in KNOWN_TOP or (wrapper and wrapper[0].kind != "dir") or not any("/" in m.name for m in members):
        return members
    stripped = []
    for member in members:
        if member.name == top:
            continue
        member.name = member.name[len(top) + 1:]
        stripped.append(member)
    return stripped


def _layout(members: list[Member]) -> str | None:
    dirs = {m.name.split("/", 1)[0] for m in members if m.kind == "dir" or "/" in m.name}
    if {"wp-includes", "wp-content"} <= dirs:
        return "wordpress"
    if "wp-content" in dirs:
        return "wp-content-dir"
    if dirs & {"themes", "plugins", "mu-plugins"}:
        return "wp-content"
    return None


def inspect(path: str, *, max_bytes: int, max_members: int = MAX_MEMBERS, keep_open: bool = False,
            require_layout: bool = True):
    """Check every entry of the archive at ``path``; raise ArchiveRejected
    listing all problems, else return the Inspection (and the open archive
    when ``keep_open``). ``require_layout=False``: any tree (an update
    package: one plugin, one theme, or WordPress itself), same entry rules."""
    fmt, entries, problems, archive = open_archive(path, max_members)
    try:
        if len(entries) + len(problems) > max_members:
            problems.append(f"more entries than the limit of {max_members}")
        members: list[Member] = []
        seen: set[str] = set()
        for raw, kind, size, executable, link, entry in entries:
            name, problem = clean_name(raw)
            if problem:
                problems.append(problem)
                continue
            if not name:
                continue
            if name in seen:
                problems.append(f"{raw!r}: appears twice")
                continue
            seen.add(name)
            members.append(Member(name, kind, size, executable, link, entry))
        # Links are judged where they will lie, so the wrapper goes first.
        members = _strip_wrapper(members)
        problems += structure_problems(members)
        total = sum(m.size for m in members)
        if total > max_bytes:
            problems.append(f"unpacks to {total} bytes, more than the limit of {max_bytes}")
        layout = None
        if not problems and require_layout:
            layout = _layout(members)
            if layout is None:
                problems.append("holds neither a WordPress tree (wp-includes/ and wp-content/), a wp-content/ "
                                "directory, nor a wp-content tree (themes/, plugins/ or mu-plugins/)")
        if problems:
            raise ArchiveRejected(problems)
        inspection = Inspection(fmt, layout, members, total)
    except BaseException:
        archive.close()
        raise
    if keep_open:
        return inspection, archive
    archive.close()
    return inspection


def tree_problems(root: str, *, hard_links_ok: bool = False, ignore: frozenset[str] = frozenset()) -> list[str]:
    """Check a tree on disk (a git checkout) by the archive rules; returns
    every problem found. Walked with lstat and directory handles opened
    without following links, so a link in the tree is judged, never followed.
    ``hard_links_ok``: a release built on another one shares its files;
    ``ignore``: names (relative) left out, e.g. a release's own links into shared/."""
    members: list[Member] = []
    problems: list[str] = []
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.lstat(root)
    if not stat.S_ISDIR(top.st_mode):
        return [f"{root!r}: not a directory"]
    pending = [("", (top.st_dev, top.st_ino))]
    while pending:
        relative, identity = pending.pop()
        try:
            fd = os.open(os.path.join(root, relative) if relative else root, flags)
        except OSError as exc:
            problems.append(f"{relative!r}: cannot be opened ({exc.strerror})")
            continue
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != identity:
                problems.append(f"{relative!r}: changed while it was being checked")
                continue
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    if name in ignore:
                        continue
                    clean, problem = clean_name(name)
                    if problem:
                        problems.append(problem)
                        continue
                    info = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                    mode = info.st_mode
                    if stat.S_ISDIR(mode):
                        members.append(Member(clean, "dir", 0, False))
                        pending.append((name, (info.st_dev, info.st_ino)))
                    elif stat.S_ISLNK(mode):
                        members.append(Member(clean, "symlink", 0, False, os.readlink(entry.name, dir_fd=fd)))
                    elif not stat.S_ISREG(mode):
                        problems.append(f"{name!r}: special files (devices, FIFOs, sockets) are not accepted")
                    elif info.st_nlink > 1 and not hard_links_ok:
                        problems.append(f"{name!r}: hard links are not accepted")
                    else:
                        members.append(Member(clean, "file", info.st_size, bool(mode & 0o111)))
        finally:
            os.close(fd)
    return problems + structure_problems(members, "the tree")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def extract(path: str, destination: str, *, max_bytes: int, max_members: int = MAX_MEMBERS) -> Inspection:
    """Check, then write the archive's entries under ``destination`` (an empty
    directory): files with O_NOFOLLOW|O_EXCL, links last, owners and odd modes
    ignored (0644/0755)."""
    inspection, archive = inspect(path, max_bytes=max_bytes, max_members=max_members, keep_open=True)
    root = os.path.realpath(destination)
    written = 0
    try:
        for member in sorted(inspection.members, key=lambda m: m.name.count("/")):
            target = os.path.join(root, *member.name.split("/"))
            parent = os.path.dirname(target)
            if member.kind == "symlink":
                continue
            os.makedirs(parent, mode=0o755, exist_ok=True)
            if not _inside(os.path.realpath(parent), root):
                raise ArchiveRejected([f"{member.name!r}: would be written outside the target"])
            if member.kind == "dir":
                os.makedirs(target, mode=0o755, exist_ok=True)
                continue
            source = archive.extractfile(member.entry) if inspection.format == "tar" else archive.open(member.entry)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if member.executable else 0o644)
            with os.fdopen(fd, "wb") as out, source:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ArchiveRejected([f"unpacks to more than the limit of {max_bytes} bytes"])
                    out.write(chunk)
        for member in inspection.members:
            if member.kind != "symlink":
                continue
            target = os.path.join(root, *member.name.split("/"))
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if not _inside(os.path.realpath(os.path.dirname(target)), root):
                raise ArchiveRejected([f"{member.name!r}: would be written outside the target"])
            os.symlink(member.link, target)
    except DAMAGED as exc:
        raise ArchiveRejected([f"the archive is damaged: {exc}"]) from None
    finally:
        archive.close()
    return inspection
