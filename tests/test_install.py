"""The package works from a non-editable install, without the repository beside it.

The sources the build uses (``pyproject.toml``, ``README.md``, ``snnedu/``) are copied to a temporary
folder and installed from there with ``pip install --no-deps --no-build-isolation --no-index --target``
(offline, with the venv's own setuptools, as ``make install`` builds; nothing is written into the
working tree). The installed copy is put first on ``PYTHONPATH``, ahead of the editable install's finder,
and run from a folder outside the repository. ~10 s.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed (make install needs it too)")
    root = tmp_path_factory.mktemp("install")
    src, target = root / "src", root / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "snnedu", src / "snnedu", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--no-cache-dir", "--target", str(target), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    return target, env, root


def test_installed_files_are_the_package_only(installed):
    target, _, _ = installed
    assert sorted(p.name for p in target.iterdir()) == ["snnedu", "snnedu-0.1.0.dist-info"]
    record = (target / "snnedu-0.1.0.dist-info" / "RECORD").read_text()
    files = {line.split(",")[0] for line in record.splitlines()}
    shipped = {f for f in files if f.startswith("snnedu/") and not f.endswith(".pyc")}
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "snnedu").rglob("*.py")}
    assert sources <= shipped, sorted(sources - shipped)     # every source file of the package
    assert not any(f.startswith(("benchmarks/", "tests/", "studies/")) for f in files)


def test_module_help_runs_from_the_installed_package(installed):
    target, env, root = installed
    r = subprocess.run([sys.executable, "-m", "snnedu", "--help"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: python -m snnedu" in r.stdout and "train" in r.stdout
    # `benchmark` needs the repository: the installed copy says so (a clone would run benchmarks/run.py,
    # so this also shows that the installed copy, not the editable one, was imported)
    r = subprocess.run([sys.executable, "-m", "snnedu", "benchmark", "--help"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "make bench" in r.stderr and "Traceback" not in r.stderr, r.stderr
