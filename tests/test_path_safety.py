"""Symbolic links and damaged files met while importing a folder or an archive.

Real folders with real symlinks: one to a file outside the folder (/etc/passwd and a secret
of the test's own), one to a folder outside, links that stay inside, a loop, a dangling
link; a zip with a symlink member; a git repository whose index reaches through a linked
folder; damaged DOCX/PDF files. What is outside the folder never reaches the warehouse, and
every refusal is one line naming the link and where it points.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from core.domain import RawDocument, User
from ingest.errors import CollectFailure
from ingest.importers import import_path
from ingest.importers.git_repo import collect_sources

AUTHOR = User.from_full_name("Maya Lindqvist")
SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER 7f3a"
PASSWD = Path("/etc/passwd")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symbolic links need POSIX")


def _split(items: list[RawDocument | CollectFailure]) -> tuple[list[RawDocument], dict[str, str]]:
    docs = [i for i in items if isinstance(i, RawDocument)]
    failures = {Path(i.item).name: i.reason for i in items if isinstance(i, CollectFailure)}
    return docs, failures


@pytest.fixture
def linked_notes(tmp_path: Path) -> Path:
    """notes/ with every kind of link; outside/ holds what must never be imported."""
    outside = tmp_path / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "secret.md").write_text(f"# Secret\n\n{SECRET}\n")
    (outside / "private" / "diary.md").write_text(f"# Diary\n\n{SECRET}\n")

    notes = tmp_path / "notes"
    (notes / "drafts").mkdir(parents=True)
    (notes / "hello.md").write_text("# Hello\n\nA note written by hand, kept in the folder.\n")
    (notes / "drafts" / "real.md").write_text("# Real draft\n\nThe draft lives in drafts.\n")
    if PASSWD.is_file():
        (notes / "passwd-link.txt").symlink_to(PASSWD)
    (notes / "secret-link.md").symlink_to(outside / "secret.md")
    (notes / "private-link").symlink_to(outside / "private", target_is_directory=True)
    (notes / "alias.md").symlink_to(Path("drafts") / "real.md")  # stays inside
    (notes / "drafts-again").symlink_to(notes / "drafts", target_is_directory=True)
    (notes / "here").symlink_to(".", target_is_directory=True)  # a folder loop
    (notes / "loop-a.txt").symlink_to("loop-b.txt")  # a link loop
    (notes / "loop-b.txt").symlink_to("loop-a.txt")
    (notes / "dangling.md").symlink_to(tmp_path / "gone.md")
    return notes


def test_links_out_of_the_folder_are_refused(linked_notes: Path, tmp_path: Path) -> None:
    docs, failures = _split(list(import_path(linked_notes, AUTHOR)))

    # Only the two real files, once each (alias.md and drafts-again/ lead to drafts/real.md).
    assert sorted(d.title for d in docs) == ["Hello", "Real draft"]
    for doc in docs:
        text = json.dumps(doc.content)
        assert SECRET not in text and "root:x:0:0" not in text

    outside = (tmp_path / "outside").resolve()
    expected = {
        "secret-link.md": f"refused: symlink points outside {linked_notes.resolve()}, "
        f"to {outside / 'secret.md'}",
        "private-link": f"refused: symlink points outside {linked_notes.resolve()}, "
        f"to {outside / 'private'}",
        "dangling.md": f"broken symlink (points to {tmp_path / 'gone.md'})",
    }
    if PASSWD.is_file():
        expected["passwd-link.txt"] = (
            f"refused: symlink points outside {linked_notes.resolve()}, to {PASSWD.resolve()}"
        )
    # The loops are no failure: they name no file.
    assert failures == expected


def test_a_folder_reached_through_a_link_accepts_links_inside_it(
    linked_notes: Path, tmp_path: Path
) -> None:
    """`~/notes -> /data/notes`: the boundary is the real folder, not the link's path."""
    shortcut = tmp_path / "shortcut"
    shortcut.symlink_to(linked_notes, target_is_directory=True)
    docs, failures = _split(list(import_path(shortcut, AUTHOR)))
    assert sorted(d.title for d in docs) == ["Hello", "Real draft"]
    assert "secret-link.md" in failures and "alias.md" not in failures


def test_a_file_named_directly_may_be_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "essay.md"
    target.parent.mkdir()
    target.write_text("# Essay\n\nNamed on the command line, so the user chose it.\n")
    link = tmp_path / "essay-link.md"
    link.symlink_to(target)
    (doc,) = list(import_path(link, AUTHOR))
    assert isinstance(doc, RawDocument) and doc.title == "Essay"


def test_ingest_add_never_stores_what_a_link_points_out_to(
    data_dir: Path, linked_notes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.warehouse import get_warehouse
    from ingest.cli import main

    code = main(["add", str(linked_notes), "--author", "Maya Lindqvist", "--no-sync"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "collected: 2 added" in out
    link = linked_notes / "secret-link.md"
    assert f"failed: {link}: refused: symlink points outside" in err
    assert str((linked_notes.parent / "outside" / "secret.md").resolve()) in err
    if PASSWD.is_file():
        assert f"failed: {linked_notes / 'passwd-link.txt'}: refused" in err
        assert f"to {PASSWD.resolve()}" in err

    with get_warehouse() as warehouse:
        stored = [
            json.dumps(record, default=str)
            for collection in ("articles", "posts", "repositories")
            for record in warehouse.find(collection, {})
        ]
    assert len(stored) == 2
    assert not any(SECRET in s or "root:x:0:0" in s for s in stored)


# ------------------------------------------------------------------ archives


def _zip_with_symlink(dest: Path, fixtures: Path) -> Path:
    """A Medium export whose zip also holds a member stored as a symlink to /etc/passwd."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(fixtures.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(fixtures).as_posix())
        link = zipfile.ZipInfo("posts/passwd.html")
        link.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return dest


def test_symlink_members_of_an_archive_are_refused(tmp_path: Path) -> None:
    from ingest.importers import safe_zip

    fixtures = Path(__file__).parent / "fixtures" / "exports" / "medium"
    archive = _zip_with_symlink(tmp_path / "medium.zip", fixtures)
    opened = safe_zip.open_archive(archive)
    try:
        assert "posts/passwd.html" not in opened.members
        assert opened.refused == {
            "posts/passwd.html": "refused: symlink member (points to /etc/passwd)"
        }
    finally:
        opened.close()

    items = list(import_path(archive, AUTHOR))
    failures = [i for i in items if isinstance(i, CollectFailure)]
    assert [(f.item, f.reason) for f in failures] == [
        (f"{archive}::posts/passwd.html", "refused: symlink member (points to /etc/passwd)")
    ]
    docs = [i for i in items if isinstance(i, RawDocument)]
    assert len(docs) == 1 and "/etc/passwd" not in json.dumps(docs[0].content)


# ------------------------------------------------------------------ repositories


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_repository_files_behind_a_linked_folder_are_not_read(tmp_path: Path) -> None:
    """git lists index entries even where the checkout now has a link to another folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.py").write_text(f"SECRET = {SECRET!r}\n")
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "main.py").write_text("print('hello')\n")
    (repo / "docs" / "leak.py").write_text("x = 1\n")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    shutil.rmtree(repo / "docs")
    (repo / "docs").symlink_to(outside, target_is_directory=True)

    content = collect_sources(repo)
    assert "main.py" in content and "docs/leak.py" not in content
    assert SECRET not in json.dumps(content)


# ------------------------------------------------------------------ damaged files


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.docx", b"this is not a zip at all",
         "unreadable DOCX: not a ZIP archive (damaged or not a DOCX)"),
        ("empty-zip.docx", b"PK\x05\x06" + b"\0" * 18,
         "unreadable DOCX (damaged or not a DOCX): There is no item named"),
        ("broken.pdf", b"%PDF-1.4\nnot really a pdf\n", "unreadable PDF (damaged or not a PDF): "),
        ("garbage.pdf", b"garbage bytes, no header", "unreadable PDF (damaged or not a PDF): "),
    ],
)  # fmt: skip
def test_damaged_documents_name_the_file_and_the_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    (failure,) = list(import_path(path, AUTHOR))
    assert isinstance(failure, CollectFailure)
    assert failure.item == str(path)
    assert failure.reason.startswith(reason) and not failure.reason.endswith(": ")
    assert " object at 0x" not in failure.reason and "<_io." not in failure.reason
    assert '"' not in failure.reason  # no repr quotes (KeyError)
