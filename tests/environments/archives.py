"""Building deploy archives for tests, good and malicious ones."""

import io
import stat
import tarfile
import zipfile


def make_tar(path, entries, mode="w:gz"):
    """entries: (name, kind, content_or_target)."""
    with tarfile.open(path, mode) as archive:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode()
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, value
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            archive.addfile(info)
    return str(path)


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, kind, value in entries:
            info = zipfile.ZipInfo(name)
            if kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, value)
    return str(path)
