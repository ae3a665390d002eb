"""Each deployable bundle imports and serves with only its own folder and its own requirements.txt
installed in a fresh virtualenv (no access to the project's venv or source tree)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
from build import build  # noqa: E402

CE = (
    'post(\'/\', data=b\'{"message": {"data": "e30="}, "subscription": "s"}\', headers={'
    "'ce-specversion': '1.0', 'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished', 'ce-source': '//p', "
    "'ce-id': '1', 'content-type': 'application/json'})"
)

# function -> (target, signature, a request that must get this status without any cloud service)
PROBES = {
    "ingest": ("ingest", "http", "post('/ingest/alertmanager', data=b'{', content_type='application/json')", 400),
    "enrich": ("enrich", "cloudevent", CE, 200),  # a malformed event is acknowledged, not retried
    "correlate": ("correlate", "cloudevent", CE, 200),  # a malformed event is acknowledged, not retried
    "route": ("route", "cloudevent", CE, 200),  # a malformed event is acknowledged, not retried
    "archive": ("archive", "cloudevent", CE, 200),  # a malformed event is acknowledged, not retried
    "retention": ("retention", "http", "post('/?now=soon')", 400),
    "collector": ("collect", "http", "post('/')", 200),
}

SCRIPT = """
import functions_framework
app = functions_framework.create_app({target!r}, 'main.py', {signature!r})
r = app.test_client().{call}
print(r.status_code)
"""


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return {b.name: b for b in build(out)}


def venv_for(requirements: Path, cache: Path) -> Path:
    """One fresh virtualenv per distinct requirements file (enrich and correlate share theirs)."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    env = cache / key
    if not (env / "ok").exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True, timeout=900)
        (env / "ok").touch()
    return env


@pytest.mark.parametrize("name", sorted(PROBES))
def test_bundle_runs_on_its_own_requirements(name, bundles, tmp_path_factory):
    assert set(bundles) >= set(PROBES), f"functions without a probe: {set(bundles) - set(PROBES)}"
    bundle = bundles[name]
    cache = Path(str(tmp_path_factory.getbasetemp())) / "venvs"
    cache.mkdir(exist_ok=True)
    env_dir = venv_for(bundle / "requirements.txt", cache)
    target, signature, call, status = PROBES[name]
    home = tmp_path_factory.mktemp(f"home-{name}")
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "EVENTMGMT_HOME": str(home),
        "EVENTMGMT_TRANSPORT": "pubsub",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
        "GOOGLE_CLOUD_PROJECT": "bundle-test",
        "KUBECONFIG": str(home / "none"),
    }
    out = subprocess.run(
        [
            str(env_dir / "bin" / "python"),
            "-E",
            "-s",
            "-c",
            SCRIPT.format(target=target, signature=signature, call=call),
        ],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(status), out.stdout + out.stderr[-2000:]
