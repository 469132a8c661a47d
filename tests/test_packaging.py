"""The installed package: a wheel carries its spaces and baselines, `python -m nas` and `nas --version` work,
and an install outside the checkout finds its default space from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nas.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_from_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    import nas

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nas (bottleneck-nas) {nas.__version__}"
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


def test_python_dash_m_nas_runs_the_command_line() -> None:
    out = subprocess.run([sys.executable, "-m", "nas", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "compare" in out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package built as a wheel (no build isolation: no download) and installed into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "nas/search_spaces/bottleneck.yaml" in names and "nas/py.typed" in names
    assert "nas/search_spaces/baselines/resnet18.yaml" in names
    target = tmp / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return target


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-c", "import sys, nas.cli; sys.exit(nas.cli.main())", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_an_installed_package_finds_its_default_space_and_baselines_from_any_folder(installed: Path,
                                                                                     tmp_path: Path) -> None:
    where = _run_installed(installed, tmp_path, "space", "show", "--help")
    assert where.returncode == 0, where.stderr
    probe = subprocess.run([sys.executable, "-c", "import nas, nas.search.settings as s, nas.retrain.select as r; "
                            "print(nas.__file__); print(s.default_space()); print(r.baseline_names())"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True,
                           text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    module, space, baselines = probe.stdout.splitlines()
    assert module.startswith(str(installed)) and space.startswith(str(installed)) and Path(space).is_file()
    assert "resnet18" in baselines and "mobilenet_v2" in baselines
    count = _run_installed(installed, tmp_path, "space", "count", space)
    assert count.returncode == 0 and count.stdout.strip(), count.stderr
