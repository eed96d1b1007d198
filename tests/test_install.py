"""A non-editable install carries its package data: schemas, the example library, the console script.

Fast by design: the fresh venv sees the test environment's packages through a .pth
path line (which adds the folder but runs none of its .pth files, so the editable
install there cannot shadow the new one), and pip installs with --no-deps.
"""
from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

NOT_SOURCE = (".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache", ".hypothesis", ".gpu")


def _run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run outside the repository, so `python -c` cannot import the source tree from the working folder."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                            cwd=Path(argv[0]).parent, check=False)
    assert result.returncode == 0 or not check, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with storydiff installed from a copy of the repository."""
    root = tmp_path_factory.mktemp("install")
    source = root / "storydiff-src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    env = root / "env"
    _run(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", env)
    python = env / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "storydiff-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", source)
    return env / "bin"


@pytest.mark.slow
def test_installed_package_finds_its_data(installed):
    where = _run(installed / "python", "-c", "import storydiff.loader as l, storydiff.xmlio as x; "
                 "print(l.bundled_library()); print(x.schema('character'))").stdout.splitlines()
    library = Path(where[0])
    assert installed.parent in library.parents, "the bundled library must come from the install, not the repo"
    assert (library / "mara.character.xml").is_file()
    result = _run(installed / "storydiff", "validate", library, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_installed_console_script_version(installed):
    from storydiff import __version__

    assert _run(installed / "storydiff", "--version").stdout.strip() == f"storydiff {__version__}"


@pytest.mark.slow
def test_every_subpackage_of_the_source_is_installed(installed):
    source = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "storydiff").rglob("__init__.py")}
    listed = _run(installed / "python", "-c", "import pkgutil, storydiff; print(*(m.name for m in "
                  "pkgutil.walk_packages(storydiff.__path__, 'storydiff.') if m.ispkg))").stdout.split()
    assert source - {"storydiff"} <= set(listed), "add the missing ones to pyproject's packages"
