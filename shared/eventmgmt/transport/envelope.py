"""The CloudEvent Eventarc delivers for a Pub/Sub message (google.cloud.pubsub.topic.v1.messagePublished).

The same envelope is built in-process, by the local push bridge and by Eventarc, so a function
cannot tell which runtime called it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from .. import jsontext
from ..errors import InputError

MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def encode_message(
    data: bytes, attributes: dict[str, str], message_id: str, publish_time: datetime | None = None
) -> dict[str, Any]:
    """A PubsubMessage in its JSON form."""
    when = (publish_time or datetime.now(UTC)).astimezone(UTC)
    return {
        "data": base64.b64encode(data).decode(),
        "attributes": dict(attributes),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": when.isoformat().replace("+00:00", "Z"),
        "publish_time": when.isoformat().replace("+00:00", "Z"),
    }


def to_cloudevent(project: str, topic: str, subscription: str, message: dict[str, Any]) -> CloudEvent:
    attributes = {
        "type": MESSAGE_PUBLISHED,
        "source": f"//pubsub.googleapis.com/projects/{project}/topics/{topic}",
        "id": message["messageId"],
        "time": message.get("publishTime"),
        "datacontenttype": "application/json",
    }
    return CloudEvent(
        attributes, {"message": message, "subscription": f"projects/{project}/subscriptions/{subscription}"}
    )


def decode(event: CloudEvent) -> tuple[Any, dict[str, str]]:
    """The JSON payload and attributes of a messagePublished CloudEvent; InputError if malformed."""
    if event["type"] != MESSAGE_PUBLISHED:
        raise InputError(f"unexpected CloudEvent type {event['type']!r}; expected {MESSAGE_PUBLISHED}", field="type")
    data = event.get_data()
    if isinstance(data, (bytes, str)):
        try:
            data = jsontext.loads(data)
        except ValueError:
            raise InputError("CloudEvent data is not JSON", field="data") from None
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise InputError("CloudEvent data has no `message` object", field="data.message")
    msg = data["message"]
    try:
        payload = jsontext.loads(base64.b64decode(msg.get("data") or b"", validate=True))
    except (ValueError, TypeError):
        raise InputError("message.data is not base64 of JSON", field="data.message.data") from None
    attrs = msg.get("attributes") or {}
    return payload, {str(k): str(v) for k, v in attrs.items()}
