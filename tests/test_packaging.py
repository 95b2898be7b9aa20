"""The built wheel installs under one import name, ``labrador``, next to the registry's ``validators`` package.

Why a test: before, we installed top-level ``validators``, ``trainer`` and ``bot`` packages; the registry's
``validators`` (a widely used library) and ``trainer`` (Coqui's) are other projects, so installing us beside
them broke one or the other. The wheel is built and installed into a fresh virtual environment with only the
base dependencies (the contributor's install: no torch), as a user would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTHER_VALIDATORS = "validators==0.36.0"  # "Python Data Validation for Humans", on the package registry


def _run(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _source_copy(dest: Path) -> Path:
    """The files git would commit, copied: a wheel build writes ``build/`` into its source folder."""
    listed = _run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_the_wheel_installs_beside_the_registrys_validators_and_both_import(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", source)
    [wheel] = (tmp_path / "dist").glob("labrador_lab-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"labrador"}  # nothing else at the top level

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    _run(py, "-m", "pip", "install", "-q", "-c", ROOT / "requirements" / "test.lock", OTHER_VALIDATORS, wheel)
    code = ("import validators, labrador.validators.leaf as leaf, labrador\n"
            "assert validators.email('someone@example.com') and not validators.email('nope')\n"
            "assert callable(leaf.check_file) and labrador.__file__\n"
            "import importlib.util as u; print(u.find_spec('torch') is None, u.find_spec('trainer') is None)")
    out = _run(py, "-c", code, cwd=tmp_path)
    assert out.stdout.split() == ["True", "True"]  # the contributor's install: no torch, no top-level trainer
    # the command works from that install, on this repository's taxonomy, outside the repository
    proc = subprocess.run([venv / "bin" / "labrador", "validate", "--taxonomy", ROOT / "taxonomy"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower()


def test_the_trainer_runs_as_a_module_for_torchrun_and_accelerate_launch(tmp_path: Path) -> None:
    # `accelerate launch -m labrador.trainer.training --config FILE` (README, trainer/configs/*.yaml)
    proc = subprocess.run([sys.executable, "-m", "labrador.trainer.training", "--config", tmp_path / "none.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "none.yaml" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    for config in (ROOT / "trainer" / "configs").glob("*.yaml"):
        assert "-m labrador.trainer.training " in config.read_text(), config
