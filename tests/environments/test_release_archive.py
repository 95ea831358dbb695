"""Deploy archives: what is accepted, what is refused and why, and that
extraction writes only inside its target."""

import os
import stat

import pytest

from apps.environments.remote.release_archive import (
    ArchiveRejected,
    extract,
    inspect,
    tree_problems,
)
from tests.environments.archives import make_tar, make_zip

LIMIT = 10 * 1024 * 1024


THEME = [("themes/", "dir", ""), ("themes/lark/", "dir", ""), ("themes/lark/style.css", "file", "/* Theme Name: Lark */"),
         ("themes/lark/index.php", "file", "<?php echo 'lark';")]


def test_a_wp_content_tree_is_accepted_and_extracted(tmp_path):
    path = make_tar(tmp_path / "a.tar.gz", THEME + [("themes/lark/current.css", "symlink", "style.css")])
    assert inspect(path, max_bytes=LIMIT).layout == "wp-content"
    target = tmp_path / "out"
    target.mkdir()
    extract(path, str(target), max_bytes=LIMIT)
    assert (target / "themes/lark/index.php").read_text() == "<?php echo 'lark';"
    assert os.readlink(target / "themes/lark/current.css") == "style.css"
    assert stat.S_IMODE((target / "themes/lark/index.php").stat().st_mode) == 0o644


def test_layouts_and_a_wrapping_directory(tmp_path):
    wordpress = [("site-main/", "dir", ""), ("site-main/wp-includes/version.php", "file", "<?php"),
                 ("site-main/wp-content/themes/x/style.css", "file", "")]
    assert inspect(make_tar(tmp_path / "w.tar", wordpress, "w"), max_bytes=LIMIT).layout == "wordpress"
    content_dir = [("wp-content/plugins/p/p.php", "file", "<?php")]
    assert inspect(make_zip(tmp_path / "c.zip", content_dir), max_bytes=LIMIT).layout == "wp-content-dir"
    zipped = make_zip(tmp_path / "t.zip", [("repo/themes/x/style.css", "file", "x")])
    inspection = inspect(zipped, max_bytes=LIMIT)
    assert inspection.layout == "wp-content" and [m.name for m in inspection.members] == ["themes/x/style.css"]


@pytest.mark.parametrize("entries, problem", [
    ([("/etc/cron.d/evil", "file", "x")], "absolute path"),
    ([("themes/../../evil.php", "file", "x")], "parent directory"),
    ([("themes/x/link", "symlink", "/etc/passwd")], "leads outside"),
    ([("themes/x/link", "symlink", "../../../outside")], "leads outside"),
    ([("themes/a", "symlink", "."), ("themes/b", "symlink", "a/../..")], "leads outside"),
    ([("themes/l", "symlink", "x"), ("themes/l/evil.php", "file", "x")], "inside the symbolic link"),
    ([("themes/x.php", "hardlink", "/etc/shadow")], "hard links"),
    ([("themes/pipe", "fifo", "")], "special files"),
    ([("themes/a.php", "file", "x"), ("themes/./a.php", "file", "y")], "appears twice"),
])
def test_bad_tar_archives_are_refused_with_the_reason(tmp_path, entries, problem):
    path = make_tar(tmp_path / "bad.tar.gz", THEME + entries)
    with pytest.raises(ArchiveRejected) as refused:
        inspect(path, max_bytes=LIMIT)
    assert problem in str(refused.value), refused.value.problems
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ArchiveRejected):
        extract(path, str(target), max_bytes=LIMIT)
    assert list(target.iterdir()) == []  # nothing written


def test_an_archive_of_no_known_layout_is_refused(tmp_path):
    path = make_tar(tmp_path / "readme.tar", [("README.md", "file", "x"), ("src/app.js", "file", "x")], "w")
    with pytest.raises(ArchiveRejected, match="holds neither"):
        inspect(path, max_bytes=LIMIT)


def test_bad_zip_archives_are_refused(tmp_path):
    for entries, problem in (
        ([("../evil.php", "file", "x")], "parent directory"),
        ([("themes/x/l", "symlink", "/etc/passwd")], "leads outside"),
        ([("C:/evil.php", "file", "x")], "absolute path"),
    ):
        with pytest.raises(ArchiveRejected) as refused:
            inspect(make_zip(tmp_path / "bad.zip", THEME + entries), max_bytes=LIMIT)
        assert problem in str(refused.value)


def test_limits_and_non_archives(tmp_path):
    big = make_tar(tmp_path / "big.tar", THEME + [("themes/lark/big.bin", "file", "x" * 5000)], "w")
    with pytest.raises(ArchiveRejected, match="more than the limit"):
        inspect(big, max_bytes=4000)
    with pytest.raises(ArchiveRejected, match="more entries than the limit"):
        inspect(big, max_bytes=LIMIT, max_members=3)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(ArchiveRejected, match="not a tar"):
        inspect(str(junk), max_bytes=LIMIT)


def test_a_truncated_archive_is_refused_as_damaged(tmp_path):
    whole = (tmp_path / "whole.tar.gz")
    make_tar(whole, THEME + [("themes/lark/big.txt", "file", os.urandom(200_000).hex())])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[:-20_000])
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ArchiveRejected, match="damaged"):
        extract(str(cut), str(target), max_bytes=LIMIT)


WRAPPED_THEME = [("wrap/", "dir", ""), ("wrap/themes/", "dir", ""), ("wrap/themes/lark/", "dir", ""),
                 ("wrap/themes/lark/style.css", "file", "/* Theme Name: Lark */")]


@pytest.mark.parametrize("maker", [make_tar, make_zip])
def test_a_link_is_judged_where_it_lies_once_the_wrapper_is_stripped(tmp_path, maker):
    # Inside the archive "wrap/themes/up -> ../.." stays in it; laid out as
    # "themes/up" it points one level above the tree, into the release.
    escaping = maker(tmp_path / "up.archive", WRAPPED_THEME + [("wrap/themes/up", "symlink", "../..")])
    with pytest.raises(ArchiveRejected) as refused:
        inspect(escaping, max_bytes=LIMIT)
    assert refused.value.problems == ["'themes/up': symbolic link to '../..' leads outside the archive"]
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(ArchiveRejected):
        extract(escaping, str(target), max_bytes=LIMIT)
    assert list(target.iterdir()) == []

    # One level less stays inside the laid-out tree, and is kept.
    inside = maker(tmp_path / "in.archive", WRAPPED_THEME + [("wrap/themes/top", "symlink", "..")])
    assert {m.name: m.link for m in inspect(inside, max_bytes=LIMIT).members}["themes/top"] == ".."


def _tree(root):
    (root / "themes" / "lark").mkdir(parents=True)
    (root / "themes" / "lark" / "style.css").write_text("/* Theme Name: Lark */")
    (root / "themes" / "lark" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "themes" / "lark" / "run.sh", 0o755)
    os.symlink("style.css", root / "themes" / "lark" / "current.css")
    os.symlink("../themes", root / "themes" / "lark" / "all")
    return root


def test_a_checked_out_tree_is_accepted_when_its_links_stay_inside(tmp_path):
    assert tree_problems(str(_tree(tmp_path / "checkout"))) == []


@pytest.mark.parametrize("attack, problem", [
    (lambda root: os.symlink("/etc", root / "wp-content"), "'wp-content': symbolic link to '/etc' leads outside"),
    (lambda root: os.symlink("/root", root / "themes" / "evil"), "'themes/evil': symbolic link to '/root' leads outside"),
    (lambda root: os.symlink("../../..", root / "themes" / "lark" / "up"), "leads outside the tree"),
    (lambda root: (os.symlink(".", root / "themes" / "here"), os.symlink("here/../..", root / "themes" / "b")),
     "'themes/b': symbolic link to 'here/../..' leads outside"),
    (lambda root: os.mkfifo(root / "themes" / "pipe"), "special files"),
    (lambda root: os.link(root / "themes" / "lark" / "style.css", root / "themes" / "copy.css"), "hard links"),
    (lambda root: (root / "themes" / "back\\slash.php").write_text("x"), "backslash"),
])
def test_a_checked_out_tree_is_refused_by_the_archive_rules(tmp_path, attack, problem):
    root = _tree(tmp_path / "checkout")
    attack(root)
    problems = tree_problems(str(root))
    assert any(problem in line for line in problems), problems
