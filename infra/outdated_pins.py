"""`make outdated`: which pins in requirements.txt (and the functions' requirements.txt) have newer
releases on the package index. A warning, never a failure: `make test` runs it, and CI must not turn
red because a package was released overnight or the index did not answer.

Two questions to the index, both through pip itself (so its configuration, mirrors and certificates
apply), with every pin of requirements.txt unpinned and nothing installed (`pip install --dry-run
--ignore-installed --report`):

- with dependencies: the newest versions that resolve together. A pin below it is *outdated*: moving
  it is the work to do.
- without dependencies: the newest release of each package alone. A pin at the first answer but
  below this one is *held back* by another package's cap (functions-framework 3.10 caps cloudevents
  at 1.12): nothing to do until that package moves.

A function's requirements.txt that pins a package differently from requirements.txt is reported too:
the bundles are tested against their own files, the code against the root one.

Exit 0 always, unless --strict (then 1 when something is outdated or out of step); an index that
does not answer (offline, a time-out) is a warning and exit 0 even with --strict, so the check cannot
make CI flaky."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")
# pip's own waiting, then ours around it: an index that does not answer costs at most this.
PIP_TIMEOUT = ["--timeout", "15", "--retries", "1"]
RUN_TIMEOUT = 300


def newer(a: str, b: str) -> bool:
    """a is a later release than b (PEP 440); a version that is not PEP 440 is never newer."""
    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return False


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    path: Path
    name: str
    extras: str
    version: str


def read_pins(path: Path) -> list[Pin]:
    pins = []
    for line in path.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins.append(Pin(path, m.group(1), m.group(2) or "", m.group(3)))
    return pins


# (requirement lines, with dependencies?) -> {canonical name: newest version}
Ask = Callable[[list[str], bool], dict[str, str]]


def ask_pip(pip_args: Sequence[str] = ()) -> Ask:
    def ask(requirements: list[str], deps: bool) -> dict[str, str]:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--report", "-", "--disable-pip-version-check", *PIP_TIMEOUT, *pip_args]
        cmd += [] if deps else ["--no-deps"]
        out = subprocess.run(cmd + requirements, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if out.returncode != 0:
            lines = [x for x in out.stderr.splitlines() if x.strip() and "/opt/" not in x]
            raise RuntimeError(lines[-1] if lines else f"pip exited {out.returncode}")
        report = json.loads(out.stdout)
        return {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}

    return ask


@dataclass
class Finding:
    kind: str  # "outdated", "held back", "out of step"
    text: str


def check(root_file: Path, other_files: Sequence[Path], ask: Ask) -> list[Finding]:
    pins = read_pins(root_file)
    requirements = [f"{p.name}{p.extras}" for p in pins]
    together = ask(requirements, True)
    alone = ask(requirements, False)
    findings = []
    for p in pins:
        key = canonical(p.name)
        new, newest = together.get(key), alone.get(key)
        if new and newer(new, p.version):
            also = f" ({newest} exists, held back by another package's cap)" if newest and newer(newest, new) else ""
            findings.append(Finding("outdated", f"{p.name}=={p.version}: {new} resolves with the rest{also}"))
        elif newest and newer(newest, p.version):
            findings.append(Finding("held back", f"{p.name}=={p.version}: {newest} exists, but another pin caps it"))
    root = {canonical(p.name): p for p in pins}
    for f in other_files:
        for p in read_pins(f):
            want = root.get(canonical(p.name))
            if want is not None and want.version != p.version:
                rel = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
                findings.append(
                    Finding("out of step", f"{rel}: {p.name}=={p.version}, requirements.txt pins {want.version}")
                )
    return findings


def main(argv: Sequence[str] | None = None, ask: Ask | None = None) -> int:
    ap = argparse.ArgumentParser(prog="infra/outdated_pins.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    ap.add_argument("--functions", type=Path, default=ROOT / "functions", help="folder of <function>/requirements.txt")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a pin is outdated or out of step")
    ap.add_argument("--pip-arg", action="append", default=[], help="passed to pip (e.g. --pip-arg=--index-url=URL)")
    args = ap.parse_args(argv)
    others = sorted(args.functions.glob("*/requirements.txt")) if args.functions.is_dir() else []
    try:
        findings = check(args.requirements, others, ask or ask_pip(args.pip_arg))
    except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as err:
        print(f"warning: outdated pins not checked, the package index did not answer: {err}")
        return 0
    if not findings:
        print("outdated pins: none, every pin is the newest release that resolves with the rest")
        return 0
    for f in findings:
        print(f"warning: {f.kind}: {f.text}")
    actionable = [f for f in findings if f.kind != "held back"]
    print(f"outdated pins: {len(actionable)} to move, {len(findings) - len(actionable)} held back (a warning only)")
    return 1 if args.strict and actionable else 0


if __name__ == "__main__":
    sys.exit(main())
