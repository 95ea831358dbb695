"""Every entry of a directory tree as (path, kind, size, SHA-256), without
ever following a link. Standard library only: env_checksums.py imports it to
walk a release as root (release code is root's and sealed), and runs it as a
script, as the site's own user, for trees the site can write (uploads):

    runuser -u <site user> -- python3 -I -S tree_digest.py <directory>

prints one JSON line per entry, ``[path, kind, size, sha256]``, sorted by
path, then ``["", "end", count, ""]``. ``kind`` is ``file``, ``dir``,
``link`` (sha256 of the link's target text, never followed) or ``other``
(devices, pipes, sockets: neither opened nor read).

The walk opens every directory with O_NOFOLLOW relative to its already open
parent, and every file with O_NOFOLLOW|O_NONBLOCK, then checks on the open
handle that it is still a regular file: a name swapped for a link or a FIFO
between listing and opening is reported as ``other``, never read through.
"""

import hashlib
import json
import os
import stat
import sys

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1024 * 1024


def _file_digest(dir_fd: int, name: str):
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        digest = hashlib.sha256()
        size = 0
        while True:
            block = os.read(fd, CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
        return size, digest.hexdigest()
    finally:
        os.close(fd)


def walk(top: str, skip: tuple = ()):
    """Yield (path, kind, size, sha256) for every entry under ``top`` (a real
    directory, never followed if a link), paths relative and '/'-separated,
    in sorted order. ``skip``: relative paths reported as they are but not
    descended into."""
    fd = os.open(top, DIRECTORY_FLAGS)
    try:
        yield from _walk(fd, "", set(skip))
    finally:
        os.close(fd)


def _walk(fd: int, prefix: str, skip: set):
    names = sorted(os.listdir(fd))
    for name in names:
        path = prefix + name
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            continue  # gone since the listing
        if stat.S_ISLNK(info.st_mode):
            try:
                target = os.readlink(name, dir_fd=fd)
            except OSError:
                continue
            yield path, "link", len(target), hashlib.sha256(os.fsencode(target)).hexdigest()
        elif stat.S_ISDIR(info.st_mode):
            yield path, "dir", 0, ""
            if path in skip:
                continue
            try:
                child = os.open(name, DIRECTORY_FLAGS, dir_fd=fd)
            except OSError:
                continue  # swapped for a link or removed: not followed
            try:
                yield from _walk(child, path + "/", skip)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            found = _file_digest(fd, name)
            if found is None:
                yield path, "other", 0, ""
            else:
                yield path, "file", found[0], found[1]
        else:
            yield path, "other", 0, ""


def _printable(path: str) -> str:
    # File names are bytes; surrogate escapes keep undecodable ones distinct and JSON-safe.
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


if __name__ == "__main__":
    count = 0
    out = sys.stdout
    for entry_path, kind, size, sha in walk(sys.argv[1]):
        out.write(json.dumps([_printable(entry_path), kind, size, sha], ensure_ascii=True) + "\n")
        count += 1
    out.write(json.dumps(["", "end", count, ""]) + "\n")
    out.flush()
