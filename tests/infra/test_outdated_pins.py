"""infra/outdated_pins.py against a fake index: answers handed in directly, then real pip asked about
wheels made here (no network), then an index that does not answer."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
from outdated_pins import check, main, read_pins  # noqa: E402

SCRIPT = ROOT / "infra" / "outdated_pins.py"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path):
    """requirements.txt with one pin outdated, one held back by another's cap, one current; a function
    whose requirements.txt pins a package differently."""
    root = write(
        tmp_path / "requirements.txt",
        "# Runtime\npinfake-alpha==1.0\npinfake_Beta[extra]==1.0  # capped\n\npinfake-gamma==1.0\npinfake-delta==3.1\n",
    )
    write(tmp_path / "functions" / "one" / "requirements.txt", "pinfake-alpha==0.9\npinfake-delta==3.1\n")
    write(tmp_path / "functions" / "two" / "requirements.txt", "pinfake-delta==3.1\n")
    return root


def fake_index(together: dict[str, str], alone: dict[str, str]):
    asked = []

    def ask(requirements: list[str], deps: bool) -> dict[str, str]:
        asked.append((requirements, deps))
        return together if deps else alone

    return ask, asked


TOGETHER = {"pinfake-alpha": "2.0", "pinfake-beta": "1.0", "pinfake-gamma": "1.0", "pinfake-delta": "3.1"}
ALONE = {**TOGETHER, "pinfake-beta": "2.0"}


def test_pins_are_read_with_extras_and_without_comments(project):
    pins = read_pins(project)
    assert [(p.name, p.extras, p.version) for p in pins] == [
        ("pinfake-alpha", "", "1.0"),
        ("pinfake_Beta", "[extra]", "1.0"),
        ("pinfake-gamma", "", "1.0"),
        ("pinfake-delta", "", "3.1"),
    ]


def test_outdated_held_back_and_out_of_step(project):
    ask, asked = fake_index(TOGETHER, ALONE)
    others = sorted((project.parent / "functions").glob("*/requirements.txt"))
    found = [(f.kind, f.text) for f in check(project, others, ask)]
    assert found == [
        ("outdated", "pinfake-alpha==1.0: 2.0 resolves with the rest"),
        ("held back", "pinfake_Beta==1.0: 2.0 exists, but another pin caps it"),
        ("out of step", f"{others[0]}: pinfake-alpha==0.9, requirements.txt pins 1.0"),
    ]
    # the index is asked about the packages unpinned, extras kept, once with and once without dependencies
    assert asked == [(["pinfake-alpha", "pinfake_Beta[extra]", "pinfake-gamma", "pinfake-delta"], True)] + [
        (["pinfake-alpha", "pinfake_Beta[extra]", "pinfake-gamma", "pinfake-delta"], False)
    ]


def test_a_warning_not_a_failure_unless_strict(project, capsys):
    args = ["--requirements", str(project), "--functions", str(project.parent / "functions")]
    assert main(args, fake_index(TOGETHER, ALONE)[0]) == 0
    out = capsys.readouterr().out
    assert "warning: outdated: pinfake-alpha==1.0" in out and "2 to move, 1 held back" in out
    assert main([*args, "--strict"], fake_index(TOGETHER, ALONE)[0]) == 1
    # only held back: nothing to do, even when strict
    assert (
        main(
            ["--requirements", str(project), "--functions", "/nonexistent", "--strict"],
            fake_index({**TOGETHER, "pinfake-alpha": "1.0"}, {**ALONE, "pinfake-alpha": "1.0"})[0],
        )
        == 0
    )


def test_current_pins_say_so(project, capsys):
    same = {"pinfake-alpha": "1.0", "pinfake-beta": "1.0", "pinfake-gamma": "1.0", "pinfake-delta": "3.1"}
    assert (
        main(["--requirements", str(project), "--functions", "/nonexistent", "--strict"], fake_index(same, same)[0])
        == 0
    )
    assert "outdated pins: none" in capsys.readouterr().out


def test_an_index_that_does_not_answer_is_a_warning_even_when_strict(project, capsys):
    def offline(requirements: list[str], deps: bool) -> dict[str, str]:
        raise RuntimeError("ERROR: Could not find a version that satisfies the requirement pinfake-alpha")

    assert main(["--requirements", str(project), "--strict"], offline) == 0
    assert "warning: outdated pins not checked" in capsys.readouterr().out


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A wheel with nothing in it but its metadata: all pip reads to resolve."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{dist}/METADATA": meta,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{f},,\n" for f in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text)


def run_script(project: Path, *pip_args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # this machine's mirrors and indexes stay out of it
    for k in [k for k in env if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
        del env[k]
    args = ["--requirements", str(project), "--functions", str(project.parent / "functions")]
    args += [f"--pip-arg={a}" for a in pip_args]
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_real_pip_against_a_local_index(project, tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    for v in ("0.9", "1.0", "2.0"):
        wheel(index, "pinfake-alpha", v)
    wheel(index, "pinfake-beta", "1.0")
    wheel(index, "pinfake-beta", "2.0")
    wheel(index, "pinfake-gamma", "1.0", ("pinfake-beta<=1.0",))
    wheel(index, "pinfake-delta", "3.1")
    wheel(index, "pinfake-delta", "3.2rc1")  # a pre-release is not offered
    out = run_script(project, "--no-index", f"--find-links={index}")
    assert out.returncode == 0, out.stderr
    lines = [x for x in out.stdout.splitlines() if x.startswith("warning:")]
    assert lines == [
        "warning: outdated: pinfake-alpha==1.0: 2.0 resolves with the rest",
        "warning: held back: pinfake_Beta==1.0: 2.0 exists, but another pin caps it",
        f"warning: out of step: {project.parent}/functions/one/requirements.txt: pinfake-alpha==0.9, "
        "requirements.txt pins 1.0",
    ], out.stdout


def test_real_pip_with_no_index_answering(project):
    # nothing listens on the discard port: as offline, but at once
    out = run_script(project, "--index-url=http://127.0.0.1:9/simple", "--retries=0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("warning: outdated pins not checked, the package index did not answer"), out.stdout
