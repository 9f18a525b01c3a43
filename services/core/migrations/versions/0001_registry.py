"""Registry: projects, entities, feature tables; the default project.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    for table in ("entities", "feature_tables"):
        extra = (
            [sa.Column("revision", sa.BigInteger, nullable=False), sa.Column("hash", sa.Text, nullable=False)]
            if table == "feature_tables"
            else []
        )
        op.create_table(
            table,
            sa.Column("project", sa.String(255), sa.ForeignKey("projects.name"), primary_key=True),
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("spec", JSONB, nullable=False),
            *extra,
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    op.execute("INSERT INTO projects (name, archived, created_at) VALUES ('default', false, now())")


def downgrade() -> None:
    op.drop_table("feature_tables")
    op.drop_table("entities")
    op.drop_table("projects")
