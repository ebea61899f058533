"""final weights: phases.final_weights

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Adds phases.final_weights: for a finished fit, which weights it left in the
model (``trained``: an epoch's weights as trained; ``ema``: the moving
averages an optimizer with ``use_ema`` writes at the end of fit; ``other``).
Existing rows keep NULL (not recorded).

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        # A plain string column (no CHECK constraint): adding one would make
        # SQLite rebuild the phases table.
        batch_op.add_column(sa.Column('final_weights', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_column('final_weights')
