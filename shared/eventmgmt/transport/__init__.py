"""How stages hand messages to each other: a Publisher, and the Pub/Sub push envelope."""

from .envelope import MESSAGE_PUBLISHED, decode, encode_message, to_cloudevent
from .pipeline import TOPICS
from .publisher import InProcessPublisher, Outgoing, Publisher, RecordingPublisher, publish_all

DEAD_LETTER_SUFFIX = "-dead-letter"

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "MESSAGE_PUBLISHED",
    "TOPICS",
    "InProcessPublisher",
    "Outgoing",
    "Publisher",
    "RecordingPublisher",
    "decode",
    "encode_message",
    "publish_all",
    "to_cloudevent",
]
