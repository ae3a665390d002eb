"""`eventmgmt serve` takes a binary-mode CloudEvent whose data is text (the spec allows any media type),
while a text/plain write without CloudEvent headers is still refused as a possible cross-site post."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings

CE = {
    "ce-specversion": "1.0",
    "ce-id": "k-42",
    "ce-source": "/apis/serving.knative.dev/v1/namespaces/triton/services/ranker",
    "ce-type": "dev.knative.apiserver.resource.update",
}


@pytest.fixture
def client(tmp_path: Path):
    rt = build_runtime(Settings(home=tmp_path))
    yield create_app(rt, "127.0.0.1").test_client()
    rt.stop()


def test_a_binary_cloudevent_with_text_data_is_accepted(client) -> None:
    r = client.post("/ingest/cloudevent", data="ranker revision 7 ready", headers={**CE, "Content-Type": "text/plain"})
    assert r.status_code == 202, r.json
    assert r.json["accepted"] == 1


def test_text_plain_without_cloudevent_headers_is_still_refused(client) -> None:
    r = client.post("/ingest/alertmanager", data='{"alerts": []}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json["field"] == "Content-Type"


def test_two_binary_cloudevents_with_one_body_are_two_captures(client) -> None:
    headers = {**CE, "Content-Type": "text/plain"}
    first = client.post("/ingest/cloudevent", data="restarted", headers=headers)
    second = client.post("/ingest/cloudevent", data="restarted", headers={**headers, "ce-id": "k-43"})
    assert first.status_code == second.status_code == 202
    assert first.json["capture"] != second.json["capture"]
    assert first.json["ids"] != second.json["ids"]
