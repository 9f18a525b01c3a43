"""Jobs and ingestion schedules.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("base_id", sa.String(128), nullable=False, index=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("table_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("spec_hash", sa.Text, nullable=False, server_default=""),
        sa.Column("launcher", sa.String(32), nullable=False),
        sa.Column("handle", sa.Text, nullable=False, server_default=""),
        sa.Column("args", JSONB, nullable=False),
        sa.Column("output_uri", sa.Text, nullable=False, server_default=""),
        sa.Column("log_uri", sa.Text, nullable=False, server_default=""),
        sa.Column("error_message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "schedules",
        sa.Column("project", sa.String(255), primary_key=True),
        sa.Column("table_name", sa.String(255), primary_key=True),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("ingestion_timespan_days", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True)),
        sa.Column("last_job_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("jobs")
