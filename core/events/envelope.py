"""The event envelope and its JSON Schemas (``schemas/events/<type>.json``)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

ENVELOPE = "envelope"


@dataclass(frozen=True, slots=True)
class Event:
    id: uuid.UUID
    type: str
    territory: str
    occurred_at: str
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return subject_for(self.territory, self.type)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "territory": self.territory,
            "occurred_at": self.occurred_at,
            "data": self.data,
        }

    @classmethod
    def parse(cls, raw: bytes | str | dict[str, Any]) -> Event:
        doc = raw if isinstance(raw, dict) else json.loads(raw)
        validate(ENVELOPE, doc)
        return cls(uuid.UUID(doc["id"]), doc["type"], doc["territory"], doc["occurred_at"], doc["data"])


def subject_for(territory: str, event_type: str) -> str:
    """``oh.<territory>.<aggregate>.<event>``."""
    return f"oh.{territory}.{event_type}"


def new_event(territory: str, event_type: str, data: dict[str, Any]) -> Event:
    validate(event_type, data)
    return Event(uuid.uuid4(), event_type, territory, datetime.now(UTC).isoformat(), data)


@cache
def validator(name: str) -> Draft202012Validator:
    try:
        text = resources.files("schemas").joinpath("events", f"{name}.json").read_text()
    except FileNotFoundError:
        raise KeyError(f"no JSON Schema for event {name!r} in schemas/events/") from None
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate(name: str, doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``doc`` breaks the schema called ``name``."""
    validator(name).validate(doc)


def known_types() -> list[str]:
    files = resources.files("schemas").joinpath("events").iterdir()
    return sorted(
        f.name.removesuffix(".json") for f in files if f.name.endswith(".json") and f.name != f"{ENVELOPE}.json"
    )
