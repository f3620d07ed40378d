"""Export archives (LinkedIn, Medium, Substack), archive safety, git repositories, dispatch."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.domain import Category, RawDocument, User, document_id_for_link
from ingest.errors import CollectFailure
from ingest.importers import import_path, safe_zip
from ingest.importers.git_repo import EmptyRepositoryError, repository_document

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
AUTHOR = User.from_full_name("Maya Lindqvist")


def zip_folder(
    src: Path,
    dest: Path,
    *,
    prefix: str = "",
    extra: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """Zip a fixture folder the way the platform ships it (optionally inside `prefix`)."""
    with zipfile.ZipFile(dest, "w", compression) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(src).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return dest


def collect(path: Path) -> tuple[list[RawDocument], list[CollectFailure]]:
    docs, failures = [], []
    for item in import_path(path, AUTHOR):
        (failures if isinstance(item, CollectFailure) else docs).append(item)
    return docs, failures


# ------------------------------------------------------------------ LinkedIn


def test_linkedin_export_posts_and_articles(tmp_path: Path) -> None:
    docs, failures = collect(
        zip_folder(FIXTURES / "linkedin", tmp_path / "Basic_LinkedInDataExport.zip")
    )

    posts = [d for d in docs if d.category == Category.POSTS]
    articles = [d for d in docs if d.category == Category.ARTICLES]
    # 4 rows: one reshare without commentary (skipped), one without ShareLink (failure).
    assert len(posts) == 2 and len(articles) == 1  # the draft article is skipped
    assert [f.reason for f in failures] == ["share without ShareLink"]
    assert "Shares.csv" in failures[0].item

    first = posts[0]
    link = "https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A7159000000000000001"
    assert first.platform == "linkedin" and first.link == link
    assert first.id == document_id_for_link("linkedin", link)
    assert first.published_at == datetime(2024, 2, 3, 9, 15, 42, tzinfo=UTC)
    assert first.author_id == AUTHOR.id and first.author_full_name == "Maya Lindqvist"
    text = first.content["text"]
    assert "- keep the code blocks whole" in text and '"quotes" survive' in text
    assert "https://github.com/maya/twin-demo" in text
    assert first.content["image_urls"] == [
        "https://media.licdn.com/dms/image/C4D22AQ/feedshare-shrink_800/0/demo.png"
    ]
    assert posts[1].content["shared_url"] == "https://example.org/evals-first"

    article = articles[0]
    assert article.title == "Why Small Models Win"
    assert (
        article.link == "https://www.linkedin.com/pulse/why-small-models-win-maya-lindqvist-abc1f"
    )
    assert article.published_at == datetime(2023, 9, 2, 8, 30, tzinfo=UTC)
    body = article.content["text"]
    assert "### What changes" in body and "- Latency drops\n- Costs drop" in body
    assert "[my notes](https://example.com/small-models)" in body
    assert '```\nmodel = load("smol")\nprint(model("hi"))\n```' in body
    assert "Created on" not in body and "Published on" not in body


def test_export_inside_a_top_level_folder_is_detected(tmp_path: Path) -> None:
    archive = zip_folder(
        FIXTURES / "linkedin", tmp_path / "export.zip", prefix="Complete_LinkedInDataExport/"
    )
    docs, _ = collect(archive)
    assert len(docs) == 3


# ------------------------------------------------------------------ Medium


def test_medium_export_skips_drafts_and_responses(tmp_path: Path) -> None:
    docs, failures = collect(zip_folder(FIXTURES / "medium", tmp_path / "medium-export.zip"))
    assert failures == []
    assert len(docs) == 1
    doc = docs[0]
    assert doc.platform == "medium" and doc.category == Category.ARTICLES
    assert doc.title == "Shipping a Writing Twin"
    assert doc.link == "https://medium.com/@maya/shipping-a-writing-twin-3f9a1c2b7d10"
    assert doc.id == document_id_for_link("medium", doc.link)
    assert doc.published_at == datetime(2023, 4, 2, 14, 5, 9, 123000, tzinfo=UTC)
    assert doc.content["subtitle"] == "What I learned building an LLM that writes like me"
    text = doc.content["text"]
    assert not text.startswith("#")  # the repeated title/subtitle blocks are gone
    assert "### The pipeline" in text
    assert "[LLM Engineer's Handbook](https://example.com/handbook)" in text
    assert "```\ndef clean(text):\n    return text.strip()\n```" in text  # <br> lines kept
    assert "Exported from" not in text


def test_unsafe_member_paths_are_ignored(tmp_path: Path) -> None:
    evil = (
        FIXTURES / "medium/posts/2023-04-02_Shipping-a-Writing-Twin-3f9a1c2b7d10.html"
    ).read_bytes()
    archive = zip_folder(
        FIXTURES / "medium",
        tmp_path / "medium.zip",
        extra={
            "../../posts/evil.html": evil,
            "/etc/posts/abs.html": evil,
            "C:/posts/win.html": evil,
        },
    )
    opened = safe_zip.open_archive(archive)
    try:
        assert sorted(opened.ignored) == [
            "../../posts/evil.html",
            "/etc/posts/abs.html",
            "C:/posts/win.html",
        ]
        assert not any(m.endswith(("evil.html", "abs.html", "win.html")) for m in opened.members)
    finally:
        opened.close()
    docs, failures = collect(archive)
    assert len(docs) == 1 and failures == []
    assert not (tmp_path.parent / "posts").exists()


def test_corrupt_member_fails_alone(tmp_path: Path) -> None:
    """A member whose bytes are damaged (bad CRC) is one failure; the others still import."""
    archive = zip_folder(
        FIXTURES / "medium",
        tmp_path / "medium.zip",
        compression=zipfile.ZIP_STORED,
        extra={"posts/2024-01-01_Second-Post-aaaabbbbcccc.html": _medium_page("Second Post")},
    )
    data = bytearray(archive.read_bytes())
    marker = b"Most of the work was data"
    at = data.index(marker)
    data[at : at + 4] = b"XXXX"
    archive.write_bytes(bytes(data))
    docs, failures = collect(archive)
    assert [d.title for d in docs] == ["Second Post"]
    assert len(failures) == 1 and "Shipping-a-Writing-Twin" in failures[0].item
    assert "cannot read" in failures[0].reason


def _medium_page(title: str) -> bytes:
    return (
        f'<html><body><article class="h-entry"><h1 class="p-name">{title}</h1>'
        f'<section data-field="body" class="e-content"><h3 class="graf graf--h3 graf--title">{title}</h3>'
        f'<p class="graf graf--p">Body of {title}.</p></section><footer>'
        f'<time class="dt-published" datetime="2024-01-01T00:00:00.000Z">Jan 1</time>'
        f'<a href="https://medium.com/@maya/{title.lower().replace(" ", "-")}" class="p-canonical">Canonical link</a>'
        f"</footer></article></body></html>"
    ).encode()


# ------------------------------------------------------------------ Substack


def test_substack_export(tmp_path: Path) -> None:
    docs, failures = collect(zip_folder(FIXTURES / "substack", tmp_path / "substack.zip"))
    assert len(docs) == 1  # the unpublished post is skipped
    assert [f.reason for f in failures] == ["post body missing"]
    assert "139876545.lost-body" in failures[0].item
    doc = docs[0]
    assert doc.platform == "substack" and doc.category == Category.ARTICLES
    assert doc.title == "Evaluation before fine-tuning"
    assert doc.content["subtitle"] == "Why I measure first"
    assert doc.link == "https://substack.com/home/post/p-139876543"
    assert doc.id == document_id_for_link("substack", doc.link)
    assert doc.published_at == datetime(2024, 3, 14, 7, 0, tzinfo=UTC)
    text = doc.content["text"]
    assert "## The loop" in text and "- Write the eval\n- Run the baseline" in text
    assert "```\npytest -q evals/\n```" in text
    assert "[the evals guide](https://example.com/evals)" in text
    assert "Subscribe" not in text and "Type your email" not in text


# ------------------------------------------------------------------ archive safety


def test_broken_zip_is_one_failure(tmp_path: Path) -> None:
    broken = tmp_path / "export.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 50)
    docs, failures = collect(broken)
    assert docs == [] and len(failures) == 1
    assert failures[0].item == str(broken) and "broken zip archive" in failures[0].reason


def test_truncated_zip_is_one_failure(tmp_path: Path) -> None:
    archive = zip_folder(FIXTURES / "substack", tmp_path / "substack.zip")
    archive.write_bytes(archive.read_bytes()[:-40])  # central directory cut off
    docs, failures = collect(archive)
    assert docs == [] and len(failures) == 1 and "broken zip" in failures[0].reason


def test_zip_bomb_ratio_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Shares.csv", "Date,ShareLink,ShareCommentary\n")
        zf.writestr("posts/zeros.html", b"\0" * (8 * 1024 * 1024))
    assert bomb.stat().st_size < 100_000
    docs, failures = collect(bomb)
    assert docs == [] and len(failures) == 1
    assert "zip bomb" in failures[0].reason and "zeros.html" in failures[0].reason


def test_zip_member_count_and_total_size_caps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = zip_folder(FIXTURES / "medium", tmp_path / "medium.zip")
    monkeypatch.setattr(safe_zip, "MAX_MEMBERS", 3)
    (failure,) = list(import_path(archive, AUTHOR))
    assert "zip bomb" in failure.reason and "members" in failure.reason
    monkeypatch.setattr(safe_zip, "MAX_MEMBERS", 20_000)
    monkeypatch.setattr(safe_zip, "MAX_TOTAL_UNCOMPRESSED", 1000)
    (failure,) = list(import_path(archive, AUTHOR))
    assert "zip bomb" in failure.reason and "uncompressed" in failure.reason


def test_unknown_zip_is_unrecognised(tmp_path: Path) -> None:
    unknown = tmp_path / "photos.zip"
    with zipfile.ZipFile(unknown, "w") as zf:
        zf.writestr("notes/todo.txt", "buy milk")
        zf.writestr("posts/not-medium.html", "<p>just a page</p>")
    (failure,) = list(import_path(unknown, AUTHOR))
    assert failure.item == str(unknown) and "unrecognised archive" in failure.reason


def test_missing_path_is_a_failure(tmp_path: Path) -> None:
    (failure,) = list(import_path(tmp_path / "nope", AUTHOR))
    assert failure.reason == "no such file or directory"


# ------------------------------------------------------------------ git repositories

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=Maya",
            "-c",
            "user.email=maya@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "twin-demo"
    (repo / "src").mkdir(parents=True)
    (repo / "src/app.py").write_text("def main() -> None:\n    print('hi')\n")
    (repo / "README.md").write_text("# twin-demo\n\nA demo.\n")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "debug.log").write_text("ignored by .gitignore\n")
    (repo / "node_modules/left-pad").mkdir(parents=True)
    (repo / "node_modules/left-pad/index.js").write_text("module.exports = 1;\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (repo / "weird.py").write_bytes(b"print(1)\x00\x01\x02")
    (repo / "package-lock.json").write_text("{}\n")
    (repo / "static").mkdir()
    (repo / "static/app.min.js").write_text("var a=1;\n")
    (repo / "big.py").write_text("x = 1\n" * 200_000)  # > 1 MB
    (repo / "empty.py").write_text("")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A", "-f", ".", ":!debug.log")
    _git(repo, "commit", "-q", "-m", "init")
    (repo / "notes.py").write_text("# untracked but not ignored\n")
    return repo


@needs_git
def test_git_repository_document(git_repo: Path) -> None:
    docs, failures = collect(git_repo)
    assert failures == [] and len(docs) == 1
    doc = docs[0]
    assert doc.category == Category.REPOSITORIES and doc.platform == "git"
    assert doc.title == "twin-demo"
    assert doc.link == git_repo.resolve().as_uri()
    assert doc.id == document_id_for_link("git", doc.link)
    assert set(doc.content) == {".gitignore", "README.md", "src/app.py", "notes.py"}
    assert doc.content["src/app.py"] == "def main() -> None:\n    print('hi')\n"
    assert doc.published_at is not None


@needs_git
def test_repository_document_for_crawler(git_repo: Path) -> None:
    link = "https://github.com/maya/twin-demo"
    doc = repository_document(git_repo, link, AUTHOR, "github")
    assert doc.title == "twin-demo" and doc.link == link and doc.platform == "github"
    assert doc.id == document_id_for_link("github", link)


def test_code_folder_without_git(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg/__init__.py").write_text("")
    (code / "pkg/core.py").write_text("VALUE = 42\n")
    (code / "main.go").write_text("package main\n")
    (code / "README.md").write_text("# code\n")
    docs, failures = collect(code)
    assert failures == [] and len(docs) == 1
    assert docs[0].category == Category.REPOSITORIES
    assert set(docs[0].content) == {"pkg/core.py", "main.go", "README.md"}

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nText.\n")
    (notes / "script.py").write_text("print(1)\n")
    (notes / "b.md").write_text("# B\n\nMore text.\n")
    kinds = [type(i).__name__ for i in import_path(notes, AUTHOR)]
    assert kinds.count("RawDocument") == 2  # two articles; the lone .py is unsupported there


def test_empty_repository_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/logo.png").write_bytes(b"\x89PNG\x00")
    with pytest.raises(EmptyRepositoryError):
        repository_document(tmp_path / "empty", "https://github.com/x/empty", AUTHOR, "github")
    (failure,) = list(import_path(tmp_path / "empty", AUTHOR, as_code=True))
    assert "no source files" in failure.reason


@needs_git
def test_folder_with_export_and_repository(tmp_path: Path, git_repo: Path) -> None:
    """A folder walk hands zips to the export importers and `.git` folders to the repo walker."""
    root = tmp_path / "everything"
    root.mkdir()
    zip_folder(FIXTURES / "substack", root / "substack-export")  # no suffix: detected as zip
    shutil.move(str(git_repo), root / "twin-demo")
    (root / "hello.md").write_text("# Hello\n\nWorld.\n")
    docs, failures = collect(root)
    assert sorted((d.platform, d.category) for d in docs) == [
        ("file", "articles"),
        ("git", "repositories"),
        ("substack", "articles"),
    ]
    assert [f.reason for f in failures] == ["post body missing"]
