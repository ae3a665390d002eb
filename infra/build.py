"""`make build`: one deployable bundle per function, with the library vendored in.

Cloud Functions runs no setup.py: each bundle is `main.py`, `requirements.txt` and a copy of
`shared/eventmgmt`, under build/functions/<name>/ (and a zip beside it for upload)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
LIBRARY = ROOT / "shared" / "eventmgmt"
OUT = ROOT / "build" / "functions"


def build(out: Path = OUT) -> list[Path]:
    bundles = []
    for fn in sorted(p for p in FUNCTIONS.iterdir() if (p / "main.py").exists()):
        dest = out / fn.name
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in ("main.py", "requirements.txt"):
            shutil.copy2(fn / name, dest / name)
        shutil.copytree(LIBRARY, dest / "eventmgmt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.make_archive(str(dest), "zip", dest)
        bundles.append(dest)
    return bundles


if __name__ == "__main__":
    for b in build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(b)
