"""The release: sdist and wheel build, ``twine check`` accepts them, and the wheel works without the repository.

The wheel goes into a fresh virtual environment in a temporary folder; its dependencies (torch and the rest)
come from this environment's site-packages, added as a plain path so that this checkout's editable install
stays out of it. ``bayesdrop demo`` (the README's first command) then runs from the wheel, and every
public module imports from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import bayesdrop
from tests.test_docstrings import public_modules

pytest.importorskip("build", reason="the dev extras are not installed")
pytest.importorskip("twine", reason="the dev extras are not installed")

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _package_files() -> set[str]:
    """Every file the package must ship: its modules and data (whatever is tracked under bayesdrop/)."""
    listed = _run(["git", "ls-files", "bayesdrop"], cwd=ROOT).stdout.split()
    return {name for name in listed if not name.endswith((".pyc",))}


def _build(out: Path) -> tuple[Path, Path]:
    # --no-isolation: the build backend (setuptools) comes from this environment, no download
    _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)])
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return wheels[0], sdists[0]


def test_the_release_builds_passes_twine_holds_every_file_and_runs_from_a_fresh_environment(tmp_path: Path) -> None:
    # one test, one build: the checks below all need the same wheel
    wheel, sdist = _build(tmp_path / "dist")
    assert wheel.name.startswith(f"bayesdrop-{bayesdrop.__version__}-")
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
    _check_contents(wheel)
    _check_fresh_environment(wheel, tmp_path)


def _check_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        shipped = set(z.namelist())
        entry_points = next(n for n in shipped if n.endswith(".dist-info/entry_points.txt"))
        assert "bayesdrop = bayesdrop.cli:main" in z.read(entry_points).decode()
    missing = sorted(_package_files() - shipped)
    assert not missing, f"the wheel {wheel.name} lacks: {', '.join(missing)}"


def _check_fresh_environment(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    host = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_host_dependencies.pth").write_text("\n".join(sorted(host)) + "\n")

    run_dir = tmp_path / "elsewhere"  # outside the repository: nothing of the checkout on the path
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    imports = "; ".join(f"import {m}" for m in public_modules())
    check = f"{imports}; import bayesdrop; print(bayesdrop.__file__); print(bayesdrop.__version__)"
    where, version = _run([str(python), "-c", check], cwd=run_dir, env=env).stdout.split()
    assert Path(where).is_relative_to(env_dir), f"bayesdrop was imported from {where}, not from the wheel"
    assert version == bayesdrop.__version__

    script = env_dir / ("Scripts" if os.name == "nt" else "bin") / "bayesdrop"
    _run([str(script), "demo", "--out", "demo-out"], cwd=run_dir, env=env)
    assert (run_dir / "demo-out" / "index.html").exists()
