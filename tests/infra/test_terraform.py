"""No Terraform binary here: parse the HCL (python-hcl2) and check it agrees with the code."""

from __future__ import annotations

import ast
from pathlib import Path

import hcl2

from eventmgmt.archive import retention_config
from eventmgmt.archive.lifecycle import lifecycle_rules
from eventmgmt.config import default_config
from eventmgmt.emulator.stack import FUNCTIONS
from eventmgmt.transport import TOPICS
from eventmgmt.transport.pubsub import SUBSCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
# python-hcl2 7+ keeps strings' quotes, comments and block markers unless told not to: these options give
# the plain values the checks below compare with the code.
PLAIN = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
TF = hcl2.load((ROOT / "infra" / "terraform" / "main.tf").open(), serialization_options=PLAIN)
LOCALS = TF["locals"][0]


def decorated(path: Path) -> set[str]:
    """Names of the functions-framework entry points a main.py declares."""
    tree = ast.parse(path.read_text())
    return {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and any("functions_framework" in ast.unparse(d) for d in n.decorator_list)
    }


def test_topics_match_the_code():
    assert LOCALS["topics"] == list(TOPICS)
    resources = {k for r in TF["resource"] for k in r}
    assert {
        "google_pubsub_topic",
        "google_cloudfunctions2_function",
        "google_cloud_scheduler_job",
        "google_storage_bucket",
        "google_secret_manager_secret",
    } <= resources


def test_every_function_is_deployed_with_its_entry_point_and_trigger():
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "main.py").exists()}
    functions = LOCALS["functions"]
    deployed_sources = {f.get("source", name) for name, f in functions.items()}
    assert deployed_sources == folders
    for name, f in functions.items():
        source = f.get("source", name)
        assert f["entry_point"] in decorated(ROOT / "functions" / source / "main.py"), name
        target, signature, topic = FUNCTIONS[name]
        assert f["entry_point"] == target and f["topic"] == topic
        assert (signature == "cloudevent") == (topic is not None)
        if topic:
            assert name in SUBSCRIPTIONS[topic]


def test_retry_policy_on_every_trigger():
    fn = next(r["google_cloudfunctions2_function"] for r in TF["resource"] if "google_cloudfunctions2_function" in r)
    trigger = fn["function"]["dynamic"][0]["event_trigger"]["content"][0]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"


def test_bucket_lifecycle_mirrors_the_retention_policy():
    policy = retention_config(default_config().section("retention"))
    want = sorted(
        (
            r["action"]["type"],
            r["action"].get("storage_class"),
            r["condition"]["age"],
            tuple(r["condition"]["matches_prefix"]),
        )
        for r in lifecycle_rules(policy)
    )
    got = sorted((r["action"], r["storage_class"], r["age"], tuple(r["prefixes"])) for r in LOCALS["lifecycle_rules"])
    assert got == want


def test_schedules_exist_for_the_scheduled_functions():
    assert set(LOCALS["schedules"]) == {"collector", "correlate-tick", "route-flush", "retention"}
