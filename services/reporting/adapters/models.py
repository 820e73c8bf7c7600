"""SQLAlchemy 2 models of reporting's tables (all prefixed `reporting_`).

Nothing here identifies a person: no image bytes, no boxes, no face data, no S3 keys. `person_index` is the
person's Id inside one Rekognition response, meaningless across frames.
"""

from datetime import datetime
from typing import cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

OUTCOMES = "('with', 'without', 'indeterminate')"


class Base(DeclarativeBase):
    pass


class Site(Base):
    """A site's IANA time zone, used for hour / day / week buckets. Sites without a row use UTC."""

    __tablename__ = "reporting_sites"

    site_id: Mapped[str] = mapped_column(Text, primary_key=True)
    timezone: Mapped[str] = mapped_column(Text, nullable=False, server_default="UTC")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Frame(Base):
    """One analysed frame (the idempotency key of ingestion is its frame id)."""

    __tablename__ = "reporting_frames"

    frame_id: Mapped[str] = mapped_column(Text, primary_key=True)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    site_id: Mapped[str] = mapped_column(Text, nullable=False)
    zone_id: Mapped[str] = mapped_column(Text, nullable=False)
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    analyzed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    required_types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    min_confidence: Mapped[float] = mapped_column(Float, nullable=False)
    persons_total: Mapped[int] = mapped_column(SmallInteger, nullable=False)

    __table_args__ = (
        Index("ix_reporting_frames_captured_at", "captured_at"),
        Index("ix_reporting_frames_ingested_at", "ingested_at"),
        Index("ix_reporting_frames_camera_captured", "camera_id", "captured_at"),
    )


class PersonEvent(Base):
    """One person in one frame: the Summary verdict and the outcome per required equipment type."""

    __tablename__ = "reporting_person_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    frame_id: Mapped[str] = mapped_column(
        Text, ForeignKey("reporting_frames.frame_id", ondelete="CASCADE"), nullable=False
    )
    person_index: Mapped[int] = mapped_column(Integer, nullable=False)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    site_id: Mapped[str] = mapped_column(Text, nullable=False)
    zone_id: Mapped[str] = mapped_column(Text, nullable=False)
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    person_confidence: Mapped[float] = mapped_column(Float, nullable=False)
    head_cover: Mapped[str | None] = mapped_column(Text)
    head_cover_confidence: Mapped[float | None] = mapped_column(Float)
    face_cover: Mapped[str | None] = mapped_column(Text)
    face_cover_confidence: Mapped[float | None] = mapped_column(Float)
    hand_cover: Mapped[str | None] = mapped_column(Text)
    hand_cover_confidence: Mapped[float | None] = mapped_column(Float)
    # custom equipment required of this person: {"hi_vis_vest": {"outcome": ..., "confidence": ...}}
    equipment: Mapped[dict[str, dict[str, object]] | None] = mapped_column(JSONB)

    __table_args__ = (
        UniqueConstraint("frame_id", "person_index", name="uq_reporting_person_events_frame_person"),
        CheckConstraint(f"outcome IN {OUTCOMES}", name="ck_reporting_person_events_outcome"),
        CheckConstraint(f"head_cover IS NULL OR head_cover IN {OUTCOMES}", name="ck_reporting_person_events_head"),
        CheckConstraint(f"face_cover IS NULL OR face_cover IN {OUTCOMES}", name="ck_reporting_person_events_face"),
        CheckConstraint(f"hand_cover IS NULL OR hand_cover IN {OUTCOMES}", name="ck_reporting_person_events_hand"),
        Index("ix_reporting_person_events_site_captured", "site_id", "captured_at"),
        Index("ix_reporting_person_events_captured_at", "captured_at"),
    )


class Rollup(Base):
    """Person counts per 15-minute UTC bucket, camera and equipment type ('ALL' = the person verdict).

    Maintained on ingest in the same transaction as the events; every aggregate of the API reads it.
    """

    __tablename__ = "reporting_rollup_15m"

    site_id: Mapped[str] = mapped_column(Text, primary_key=True)
    equipment_type: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    zone_id: Mapped[str] = mapped_column(Text, primary_key=True)
    camera_id: Mapped[str] = mapped_column(Text, primary_key=True)
    persons_with: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    persons_without: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    persons_indeterminate: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")

    __table_args__ = (Index("ix_reporting_rollup_15m_bucket_start", "bucket_start"),)


class Incident(Base):
    """Latest state of a notifier incident (a tracked violation), newest change wins."""

    __tablename__ = "reporting_incidents"

    incident_id: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    camera_id: Mapped[str] = mapped_column(Text, nullable=False)
    site_id: Mapped[str] = mapped_column(Text, nullable=False)
    zone_id: Mapped[str] = mapped_column(Text, nullable=False)
    missing_equipment: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    severity: Mapped[str] = mapped_column(Text, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frame_id: Mapped[str] = mapped_column(Text, nullable=False)
    max_confidence: Mapped[float] = mapped_column(Float, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    # the operators' review (r0005): the verdicts give the alert precision per camera
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)
    review: Mapped[str | None] = mapped_column(Text)
    review_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('open', 'updated', 'resolved')", name="ck_reporting_incidents_status"),
        CheckConstraint("review IN ('confirmed', 'false_positive')", name="ck_reporting_incidents_review"),
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="ck_reporting_incidents_severity"),
        CheckConstraint("version >= 0", name="ck_reporting_incidents_version"),
        Index("ix_reporting_incidents_started", "started_at", "incident_id"),
        Index("ix_reporting_incidents_site_started", "site_id", "started_at"),
        Index("ix_reporting_incidents_recorded_at", "recorded_at"),
    )


class ExportState(Base):
    """Data-lake export progress per stream (person_events, incidents)."""

    __tablename__ = "reporting_export_state"

    stream: Mapped[str] = mapped_column(Text, primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_exported: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class DigestSubscription(Base):
    """A user's subscription to one site's daily or weekly digest, sent to the address they gave."""

    __tablename__ = "reporting_digest_subscriptions"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # access_users.id (another branch: no FK)
    site_id: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (
        CheckConstraint("period IN ('daily', 'weekly')", name="ck_reporting_digest_subscriptions_period"),
    )


class DigestSend(Base):
    """The sent-digest ledger: one row per subscriber and period; its key makes a send happen once across
    replicas and restarts (claimed with a lease, then marked sent)."""

    __tablename__ = "reporting_digest_sends"

    site_id: Mapped[str] = mapped_column(Text, primary_key=True)
    period: Mapped[str] = mapped_column(Text, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


sites = cast(Table, Site.__table__)
frames = cast(Table, Frame.__table__)
person_events = cast(Table, PersonEvent.__table__)
rollup = cast(Table, Rollup.__table__)
incidents = cast(Table, Incident.__table__)
export_state = cast(Table, ExportState.__table__)
digest_subscriptions = cast(Table, DigestSubscription.__table__)
digest_sends = cast(Table, DigestSend.__table__)
