"""Contracts: round trips, strictness, and compatibility with the published schema snapshots.

The snapshots in contract_schemas/ are what consumers in the field understand. A change that removes a
field, or makes a new field required, breaks them: bump SCHEMA_VERSION and add a new snapshot instead.
Regenerate after an additive change with: python -m tests.unit.test_contracts
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts import (
    MESSAGE_TYPES,
    AttributedCustomLabel,
    Envelope,
    FrameAnalyzed,
    FrameReceived,
    IncidentChanged,
    json_schemas,
    parse_envelope,
)
from shared.rekognition import (
    BodyPart,
    BoundingBox,
    CoversBodyPart,
    CustomLabel,
    DetectProtectiveEquipmentResponse,
    EquipmentDetection,
    Geometry,
    ProtectiveEquipmentPerson,
)
from tests.factories import frame_received

SNAPSHOTS = Path(__file__).with_name("contract_schemas")
BOX = BoundingBox(Width=0.2, Height=0.5, Left=0.1, Top=0.1)


def analyzed() -> FrameAnalyzed:
    received = frame_received("f-1")
    person = ProtectiveEquipmentPerson(
        Id=0,
        Confidence=99.1,
        BoundingBox=BOX,
        BodyParts=[
            BodyPart(
                Name="HEAD",
                Confidence=97.0,
                EquipmentDetections=[
                    EquipmentDetection(
                        Type="HEAD_COVER",
                        Confidence=95.5,
                        BoundingBox=BOX,
                        CoversBodyPart=CoversBodyPart(Value=True, Confidence=93.0),
                    )
                ],
            )
        ],
    )
    return FrameAnalyzed(
        context=received.context,
        frame=received.frame,
        summarization=received.summarization,
        ppe=DetectProtectiveEquipmentResponse(ProtectiveEquipmentModelVersion="local-1", Persons=[person]),
        custom_labels=[
            AttributedCustomLabel(
                engine="vest", person_id=0, label=CustomLabel(Name="hi_vis_vest", Confidence=88.0, Geometry=Geometry(BoundingBox=BOX))
            )
        ],
        model_versions={"local": "local-1"},
        timings_ms={"decode": 4.2},
    )


def incident() -> IncidentChanged:
    at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    return IncidentChanged(
        incident_id="i-1", status="open", camera_id="c", site_id="s", zone_id="z", missing_equipment=["HEAD_COVER"],
        severity="critical", started_at=at, last_seen_at=at, frame_id="f-1", max_confidence=91.0,
    )


@pytest.mark.parametrize("payload", [frame_received("f-1"), analyzed(), incident()], ids=lambda p: p.MESSAGE_TYPE)
def test_envelope_round_trips_through_json(payload: Any) -> None:
    envelope = Envelope.wrap(payload, producer="test", correlation_id="f-1")
    parsed = parse_envelope(envelope.to_json(), type(payload))
    assert parsed == envelope
    assert parsed.payload == payload


def test_unknown_fields_are_refused() -> None:
    body = json.loads(Envelope.wrap(frame_received("f-1"), producer="t", correlation_id="f-1").to_json())
    body["payload"]["frame"]["image_bytes"] = "aGVsbG8="  # messages never carry image bytes
    with pytest.raises(ValidationError, match="image_bytes"):
        parse_envelope(json.dumps(body), FrameReceived)


def test_envelope_with_other_type_or_version_is_refused() -> None:
    body = json.loads(Envelope.wrap(frame_received("f-1"), producer="t", correlation_id="f-1").to_json())
    with pytest.raises(ValidationError, match="does not match"):
        parse_envelope(json.dumps({**body, "message_type": "FrameAnalyzed"}), FrameReceived)
    with pytest.raises(ValidationError, match="schema_version 2 not supported"):
        parse_envelope(json.dumps({**body, "schema_version": 2}), FrameReceived)


def test_captured_at_needs_a_time_zone() -> None:
    body = json.loads(Envelope.wrap(frame_received("f-1"), producer="t", correlation_id="f-1").to_json())
    body["payload"]["context"]["captured_at"] = "2026-11-26T08:30:00"
    with pytest.raises(ValidationError, match="timezone"):
        parse_envelope(json.dumps(body), FrameReceived)


def _properties(schema: dict[str, Any]) -> dict[str, tuple[set[str], set[str]]]:
    """Object name -> (properties, required) for the root and every $defs entry."""
    objects = {"<root>": schema, **schema.get("$defs", {})}
    return {
        name: (set(obj.get("properties", {})), set(obj.get("required", [])))
        for name, obj in objects.items()
        if obj.get("type") == "object" or "properties" in obj
    }


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_schema_is_backward_compatible_with_snapshot(message_type: str) -> None:
    snapshot_file = SNAPSHOTS / f"{message_type}.v{MESSAGE_TYPES[message_type].SCHEMA_VERSION}.json"
    assert snapshot_file.exists(), f"no snapshot for {message_type}: run python -m tests.unit.test_contracts"
    old = _properties(json.loads(snapshot_file.read_text()))
    new = _properties(json_schemas()[message_type])
    for name, (old_props, old_required) in old.items():
        assert name in new, f"{message_type}: object {name} was removed"
        new_props, new_required = new[name]
        assert old_props <= new_props, f"{message_type}.{name}: fields removed: {old_props - new_props}"
        assert new_required <= old_required, f"{message_type}.{name}: newly required: {new_required - old_required}"


if __name__ == "__main__":
    for name, schema in json_schemas().items():
        path = SNAPSHOTS / f"{name}.v{MESSAGE_TYPES[name].SCHEMA_VERSION}.json"
        if not path.exists():
            path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
            print("wrote", path)
