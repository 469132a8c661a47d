"""Passwords in database URLs are masked by reading the URL, never by a pattern on text: a corpus of URL shapes
through mask_url, the recorded command line, run.yaml and the messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nas.storage import MASK, mask_argv, mask_text, mask_url

# (url, the secret that must disappear, what must survive)
CORPUS = [
    ("postgresql://u:secret@host/db", "secret", "postgresql://u:***@host/db"),
    ("postgresql://u:pa ss@host/db", "pa ss", "postgresql://u:***@host/db"),
    ("postgresql://u:p@ss@host/db", "p@ss", "postgresql://u:***@host/db"),
    ("postgresql://u:p@s@s@host:5432/db", "p@s@s", "postgresql://u:***@host:5432/db"),
    ("postgresql://u:pa/ss@host/db", "pa/ss", "postgresql://u:***@host/db"),
    ("postgresql://u:pa#ss@host/db", "pa#ss", "postgresql://u:***@host/db"),
    ("postgresql://u:pa:ss@host/db", "pa:ss", "postgresql://u:***@host/db"),
    ("postgresql://u:pa?ss@host/db", "pa?ss", "postgresql://u:***@host/db"),
    ("postgresql://u:s3cr%40t@host/db", "s3cr%40t", "postgresql://u:***@host/db"),
    ("postgresql://u:%2F%3A%23@host/db", "%2F%3A%23", "postgresql://u:***@host/db"),
    ("postgresql+psycopg://u:secret@host:5432/db", "secret", "postgresql+psycopg://u:***@host:5432/db"),
    ("mysql://root:toor@127.0.0.1/optuna", "toor", "mysql://root:***@127.0.0.1/optuna"),
    ("postgresql://:secret@host/db", "secret", "postgresql://:***@host/db"),
    ("postgresql://host/db?password=hunter2", "hunter2", "postgresql://host/db?password=***"),
    ("postgresql://host/db?sslmode=require&password=hunter2", "hunter2",
     "postgresql://host/db?sslmode=require&password=***"),
    ("postgresql://host/db?PASSWORD=hunter2&x=1", "hunter2", "postgresql://host/db?PASSWORD=***&x=1"),
    ("postgresql://host/db?passwd=hunter2", "hunter2", "postgresql://host/db?passwd=***"),
    ("postgresql://host/db?pass%77ord=hunter2", "hunter2", "postgresql://host/db?pass%77ord=***"),
    ("postgresql://u:one@host/db?password=two", "one", "postgresql://u:***@host/db?password=***"),
    ("postgresql://u:é密码@host/db", "é密码", "postgresql://u:***@host/db"),
    ("postgresql://u:" + "x" * 5000 + "@host/db", "x" * 5000, "postgresql://u:***@host/db"),
]
KEPT = [  # nothing secret: unchanged
    "postgresql://u@host/db",
    "postgresql://host:5432/db",
    "sqlite:///results/run/study.db",
    "sqlite:////tmp/a@b/study.db",
    "postgresql://host/db?sslmode=require",
]


@pytest.mark.parametrize(("url", "secret", "masked"), CORPUS)
def test_mask_url_hides_the_password_of_every_shape(url: str, secret: str, masked: str) -> None:
    out = mask_url(url)
    assert out == masked
    assert secret not in out


@pytest.mark.parametrize("url", KEPT)
def test_urls_without_a_password_are_kept(url: str) -> None:
    assert mask_url(url) == url


def test_over_masking_never_shows_less() -> None:
    # an @ in the query makes the user information ambiguous: more is hidden, the password never shown
    out = mask_url("postgresql://u:pw@host/db?application_name=a@b")
    assert "pw" not in out and MASK in out


@pytest.mark.parametrize(("url", "secret", "masked"), CORPUS)
def test_command_lines_mask_each_url_argument(url: str, secret: str, masked: str) -> None:
    argv = ["nas", "search", "--storage", url, f"--storage={url}", "--run", "x"]
    line = " ".join(mask_argv(argv))
    assert secret not in line
    assert f"--storage {masked} --storage={masked} --run x" in line


def test_free_text_masks_url_words_and_given_secrets() -> None:
    assert mask_text("cannot reach postgresql://u:pw@h/db now") == "cannot reach postgresql://u:***@h/db now"
    assert mask_text("failed for hunter2", ("hunter2",)) == "failed for ***"
    assert "pa ss" not in mask_text("error at postgresql://u:pa ss@h/db", ("pa ss",))


def test_run_yaml_and_refusals_never_show_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    for url, secret, _ in CORPUS[:10]:
        bad = url.replace("postgresql", "nosuchdb")
        argv = ["search", "--dataset", "synthetic", "--storage", bad, "--results-dir", str(tmp_path)]
        monkeypatch.setattr(sys, "argv", ["nas", *argv])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert secret not in err and err.startswith("error:"), err
    from nas.search.run_options import command_line

    monkeypatch.setattr(sys, "argv", ["nas", "search", "--storage", CORPUS[1][0]])
    assert "pa ss" not in command_line() and "u:***@host" in command_line()
