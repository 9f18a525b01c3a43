"""The registry's revision: a sequence every registry write advances, which Serving polls to reload at once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE registry_revision")


def downgrade() -> None:
    op.execute("DROP SEQUENCE registry_revision")
