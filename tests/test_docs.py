"""The documentation: the docs/ site builds with `mkdocs build --strict` (no page links to nothing), and every
relative link of the README points at a file that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    out = _build(ROOT, tmp_path / "site")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "site" / "verbs" / "index.html").is_file()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "metrics.md"
    page.write_text(page.read_text() + "\nSee [nothing](no-such-page.md) and [an anchor](verbs.md#no-such-heading).\n")
    assert _build(tmp_path, tmp_path / "site").returncode != 0


def test_every_relative_link_of_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in m and not m.startswith("#")]
    assert links, "the README links to its docs"
    missing = [m for m in links if not (ROOT / m.split("#", 1)[0]).exists()]
    assert not missing, missing
