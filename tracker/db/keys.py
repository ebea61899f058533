"""The key dictionary: ids for ``logs`` key names and for the ordered key sets of packed batches.

Ids are created on first use inside the writer's transaction (``INSERT ... ON
CONFLICT DO NOTHING``, then a read), so several processes writing one
database agree on them; ``KeyCache`` keeps them per database and forgets the
ones learnt in a transaction that was rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from tracker.db.base import table_of
from tracker.db.tables import Key, KeySet
from tracker.db.types import valid_text

__all__ = ["KeyCache"]

_KEYS, _KEYSETS = table_of(Key), table_of(KeySet)


@lru_cache(maxsize=4)
def _insert_ignore(dialect: str, table_name: str) -> Any:
    table = _KEYS if table_name == "keys" else _KEYSETS
    column = "name" if table_name == "keys" else "key_ids"
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_(table).on_conflict_do_nothing(index_elements=[column])


class KeyCache:
    """Key and keyset ids of one database, cached; ids found in a failed transaction are forgotten."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.keysets: dict[tuple[str, ...], int] = {}
        self._new_keys: list[str] = []
        self._new_keysets: list[tuple[str, ...]] = []

    def rollback(self) -> None:
        """Forget the ids learnt since the last ``commit`` (their rows may be gone)."""
        for name in self._new_keys:
            self.keys.pop(name, None)
        for names in self._new_keysets:
            self.keysets.pop(names, None)
        self.commit()

    def commit(self) -> None:
        self._new_keys, self._new_keysets = [], []

    def key_ids(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        """Return the id of every name, creating the missing ones."""
        missing = sorted({n for n in names if n not in self.keys})
        if missing:
            conn.execute(_insert_ignore(conn.dialect.name, "keys"), [{"name": n} for n in missing])
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                # A name is stored as valid text (lone surrogates escaped): map it back to the names given.
                given: dict[str, list[str]] = {}
                for name in chunk:
                    given.setdefault(valid_text(name), []).append(name)
                found: Any = conn.execute(select(_KEYS.c.id, _KEYS.c.name).where(_KEYS.c.name.in_(chunk)))
                for key_id, stored in found:
                    for name in given.get(stored, ()):
                        self.keys[name] = key_id
            self._new_keys.extend(missing)
        return self.keys

    def keyset_id(self, conn: Connection, names: tuple[str, ...]) -> int:
        """Return the id of an ordered key tuple, creating it if missing."""
        found = self.keysets.get(names)
        if found is not None:
            return found
        ids = self.key_ids(conn, names)
        text = ",".join(str(ids[n]) for n in names)
        conn.execute(_insert_ignore(conn.dialect.name, "keysets"), [{"key_ids": text}])
        found = conn.execute(select(_KEYSETS.c.id).where(_KEYSETS.c.key_ids == text)).scalar_one()
        self.keysets[names] = found
        self._new_keysets.append(names)
        return found
