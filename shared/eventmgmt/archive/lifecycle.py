"""GCS lifecycle rules that mirror the retention policy (Terraform renders or checks against these).

Bucket lifecycle ages count from object creation, and an object is written on the day of its
records (or within minutes): deleting at age delete_after + 1 day matches the partition rule."""

from __future__ import annotations

from typing import Any

from .policy import TYPES, RetentionConfig


def lifecycle_rules(policy: RetentionConfig) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for type_ in TYPES:
        p = policy.policy(type_)
        hot, keep = p.hot.days + 1, p.delete_after.days + 1
        if keep > hot:
            rules.append(
                {
                    "action": {"type": "SetStorageClass", "storage_class": "COLDLINE"},
                    "condition": {"age": hot, "matches_prefix": [f"hot/{type_}/"]},
                }
            )
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {"age": keep, "matches_prefix": [f"hot/{type_}/", f"cold/{type_}/"]},
            }
        )
    return rules
