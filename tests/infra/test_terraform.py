"""No Terraform binary here: parse the HCL (python-hcl2) and check it agrees with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import hcl2

from eventmgmt import settings as settings_module
from eventmgmt.archive import retention_config
from eventmgmt.archive.lifecycle import lifecycle_rules
from eventmgmt.cli import build_parser
from eventmgmt.collector.state import STATE_URL
from eventmgmt.config import default_config
from eventmgmt.emulator.stack import FUNCTIONS
from eventmgmt.runtime.commands import _serve
from eventmgmt.settings import INGEST_TOKEN, PROMETHEUS_URL, SINK_VARIABLES
from eventmgmt.transport import TOPICS
from eventmgmt.transport.pubsub import SUBSCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"


# python-hcl2 7+ keeps strings' quotes, comments and block markers unless told not to: these options give
# the plain values the checks below compare with the code.
PLAIN = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)


def load_module(folder: Path) -> dict[str, Any]:
    """Every .tf file of the module, as Terraform reads them: one list per block type."""
    module: dict[str, Any] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as f:
            for kind, blocks in hcl2.load(f, serialization_options=PLAIN).items():
                module.setdefault(kind, []).extend(blocks)
    return module


TF = load_module(TF_DIR)
LOCALS = {k: v for block in TF["locals"] for k, v in block.items()}
SETTINGS_VARIABLES = {v for k, v in vars(settings_module).items() if k.isupper() and isinstance(v, str)}


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


# --- issue 14: the state store, the dashboard, the runtime, the collector's state --------------------


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for block in TF["resource"] for name, body in block.get(kind, {}).items()}


def resource(kind: str, name: str | None = None) -> dict[str, Any]:
    found = resources(kind)
    if name is None:
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return next(iter(found.values()))
    assert name in found, f"no {kind}.{name}"
    return found[name]


def variable(name: str) -> dict[str, Any]:
    return next(block[name] for block in TF["variable"] if name in block)


def refs(expr: Any, kind: str) -> set[str]:
    """Names of the `kind` resources an expression refers to."""
    return set(re.findall(rf"\b{re.escape(kind)}\.([A-Za-z0-9_-]+)\b", str(expr)))


def function() -> dict[str, Any]:
    return resource("google_cloudfunctions2_function", "function")


def service_config() -> dict[str, Any]:
    return function()["service_config"][0]


def dashboard() -> dict[str, Any]:
    return resource("google_cloud_run_v2_service", "dashboard")


def container() -> dict[str, Any]:
    return dashboard()["template"][0]["containers"][0]


def dashboard_env() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container()["env"]}


def dynamic(block: dict[str, Any], name: str) -> dict[str, Any]:
    found = [d[name] for d in block.get("dynamic", []) if name in d]
    assert len(found) == 1, f"expected one dynamic {name!r}"
    return found[0]


def uses_database(source: str) -> bool:
    """Whether a function's main.py opens the state store (engine_for(settings.db_url))."""
    return "db_url" in (ROOT / "functions" / source / "main.py").read_text()


def test_cloud_sql_has_a_private_ip_only():
    instance = resource("google_sql_database_instance")
    settings = instance["settings"][0]
    (ip,) = settings["ip_configuration"]
    assert ip["ipv4_enabled"] is False
    assert "authorized_networks" not in ip
    assert ip.get("ssl_mode") == "ENCRYPTED_ONLY"
    assert refs(ip["private_network"], "google_compute_network")
    # Private services access: the network is peered with Google's service producers on a reserved range.
    peering = resource("google_service_networking_connection")
    assert peering["service"] == "servicenetworking.googleapis.com"
    assert refs(peering["network"], "google_compute_network") == refs(ip["private_network"], "google_compute_network")
    (reserved,) = refs(peering["reserved_peering_ranges"], "google_compute_global_address")
    address = resource("google_compute_global_address", reserved)
    assert (address["purpose"], address["address_type"]) == ("VPC_PEERING", "INTERNAL")
    assert refs(instance["depends_on"], "google_service_networking_connection")
    assert str(variable("database_version")["default"]).startswith("POSTGRES_")


def test_the_database_password_is_generated_and_reaches_the_code_through_secret_manager():
    (generated,) = refs(resource("google_sql_user")["password"], "random_password")
    assert resource("google_sql_user")["password"] == f"${{random_password.{generated}.result}}"
    assert resource("random_password", generated)["length"] >= 32
    version = resource("google_secret_manager_secret_version", "database_url")
    assert version["secret"] == '${google_secret_manager_secret.secret["database-url"].id}'
    url = version["secret_data"]
    assert f"random_password.{generated}.result" in url and "private_ip_address" in url and "postgresql://" in url
    # Nowhere else: no variable or other attribute carries a password or a database URL.
    assert not [name for block in TF["variable"] for name in block if "password" in name or "database_url" in name]
    text = "\n".join(p.read_text() for p in TF_DIR.glob("*.tf"))
    assert text.count("postgresql://") == 1 and text.count(f"random_password.{generated}.result") == 2
    # The functions and the dashboard read it from the secret, never from a plain variable.
    assert "EVENTMGMT_DATABASE_URL" not in str(service_config()["environment_variables"])
    secret_env = dynamic(service_config(), "secret_environment_variables")
    (content,) = secret_env["content"]
    assert content["key"] == "EVENTMGMT_DATABASE_URL" and content["version"] == "latest"
    assert "google_secret_manager_secret.secret[" in content["secret"]
    assert re.search(r"""["']database-url["']""", secret_env["for_each"])
    assert refs(function()["depends_on"], "google_secret_manager_secret_version") == {"database_url"}
    env = dashboard_env()["EVENTMGMT_DATABASE_URL"]
    assert "value" not in env
    (ref,) = env["value_source"][0]["secret_key_ref"]
    assert ref["secret"] == '${google_secret_manager_secret.secret["database-url"].secret_id}'


def test_the_functions_that_use_the_database_get_it_and_the_vpc_connector_the_others_neither():
    for name, f in LOCALS["functions"].items():
        assert f["database"] is uses_database(f.get("source", name)), name
    assert "each.value.database" in dynamic(service_config(), "secret_environment_variables")["for_each"]
    assert refs(service_config()["vpc_connector"], "google_vpc_access_connector") == {"connector"}
    assert "each.value.database" in service_config()["vpc_connector"]
    assert "PRIVATE_RANGES_ONLY" in service_config()["vpc_connector_egress_settings"]
    connector = resource("google_vpc_access_connector", "connector")
    assert refs(connector["network"], "google_compute_network") == refs(
        resource("google_sql_database_instance")["settings"][0]["ip_configuration"][0]["private_network"],
        "google_compute_network",
    )


def test_the_dashboard_is_a_cloud_run_service_and_dashboard_url_is_its_uri():
    outputs = {k: v for block in TF["output"] for k, v in block.items()}
    assert outputs["dashboard_url"]["value"] == "${google_cloud_run_v2_service.dashboard.uri}"
    # It runs `serve --dashboard-only` (no ingest, ticker or route worker), as the real CLI parses it.
    argv = container()["command"][1:] + container()["args"]
    assert container()["command"][0] == "eventmgmt"
    args = build_parser().parse_args(argv)
    assert args.func is _serve and args.host == "0.0.0.0" and args.dashboard_only is True
    # Its acks reach the route and archive functions: Pub/Sub, events-correlated only.
    assert dashboard_env()["EVENTMGMT_TRANSPORT"]["value"] == "pubsub" and "GOOGLE_CLOUD_PROJECT" in dashboard_env()
    publish = resource("google_pubsub_topic_iam_member", "dashboard_publisher")
    assert publish["role"] == "roles/pubsub.publisher" and "google_service_account.dashboard" in publish["member"]
    assert '["events-correlated"]' in publish["topic"]
    assert {p["container_port"] for p in container()["ports"]} == {args.port}
    # Against the same database, through the same connector, as its own least-privileged account.
    template = dashboard()["template"][0]
    assert refs(template["vpc_access"][0]["connector"], "google_vpc_access_connector") == {"connector"}
    assert refs(template["service_account"], "google_service_account") == {"dashboard"}
    granted = resource("google_secret_manager_secret_iam_member", "dashboard")
    assert (
        granted["role"] == "roles/secretmanager.secretAccessor"
        and "google_service_account.dashboard" in granted["member"]
    )
    assert not [
        name
        for name, m in resources("google_project_iam_member").items()
        if "google_service_account.dashboard" in str(m["member"])
    ]
    assert template["scaling"][0]["max_instance_count"] == 1  # one CSRF token
    # It pages nobody, collects nothing, and its ingest needs the token.
    assert not set(dashboard_env()) & {*SINK_VARIABLES, PROMETHEUS_URL}
    assert INGEST_TOKEN in dashboard_env() and "value_source" in dashboard_env()[INGEST_TOKEN]
    assert set(dashboard_env()) <= SETTINGS_VARIABLES
    # Open only to the members named (none by default), never to everyone.
    invokers = resource("google_cloud_run_v2_service_iam_member", "dashboard_invoker")
    assert (
        invokers["for_each"] == "${toset(var.dashboard_invokers)}" and variable("dashboard_invokers")["default"] == []
    )
    # Notifications link to it.
    assert "google_cloud_run_v2_service.dashboard.uri" in LOCALS["dashboard_url"]
    env_text = service_config()["environment_variables"]
    assert len(re.findall(r"""EVENTMGMT_DASHBOARD_URL['"]?\s*[=:]\s*['"]?\$?\{?local\.dashboard_url""", env_text)) == 1


def test_functions_run_on_python_312_or_313():
    assert function()["build_config"][0]["runtime"] == "${var.python_runtime}"
    runtime = variable("python_runtime")
    assert runtime["default"] == "python312"
    (validation,) = runtime["validation"]
    allowed = set(re.findall(r"python\d+", validation["condition"].split("var.python_runtime")[0]))
    assert allowed == {"python312", "python313"}
    assert '"python311"' not in "\n".join(p.read_text() for p in TF_DIR.glob("*.tf"))  # no other runtime set


def test_the_collector_keeps_its_state_in_a_gs_object_its_account_may_read_and_write():
    url = LOCALS["collector_state_url"]
    m = re.fullmatch(r"gs://\$\{google_storage_bucket\.([A-Za-z0-9_-]+)\.name\}/(.+)", url)
    assert m, url
    bucket, key = m.groups()
    assert LOCALS["function_environment"]["collector"] == {STATE_URL: "${local.collector_state_url}"}
    assert "lookup(local.function_environment, each.key, {})" in service_config()["environment_variables"]
    # The functions' account (the collector's) may read and write objects in that bucket.
    account = refs(service_config()["service_account_email"], "google_service_account")
    grants = [
        g
        for g in resources("google_storage_bucket_iam_member").values()
        if refs(g["bucket"], "google_storage_bucket") == {bucket}
        and refs(g["member"], "google_service_account") == account
    ]
    assert {g["role"] for g in grants} & {"roles/storage.objectAdmin", "roles/storage.objectUser"}
    # Retention and the lifecycle rules never delete it.
    prefixes = [p for rule in LOCALS["lifecycle_rules"] for p in rule["prefixes"]]
    assert not [p for p in prefixes if key.startswith(p)] and not key.startswith(("hot/", "cold/"))
    # One instance at a time reads, compares and writes it.
    assert LOCALS["functions"]["collector"]["max_instances"] == 1
