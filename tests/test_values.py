"""Logged values survive the database exactly: property tests over every float64 bit pattern.

Epoch values go through the real write operation (``InsertEpoch``) and batch
values through the real packed batch path (``write_batches``); both are read
back through ``Store``.
"""

import math
import struct
from datetime import datetime

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from conftest import BACKENDS, fresh_db

from tracker import Store
from tracker.db.migrate import open_database
from tracker.db.tables import Batch, BatchExtra, Epoch, EpochValue, Phase, PhaseKind, Run, RunMetric, Status
from tracker.db.values import decode, decode_bits, encode, logged_items, pack_batch
from tracker.db.writes import BatchRecord, InsertEpoch, KeyCache, apply, write_batches
from tracker.store.names import shown_key

any_float64 = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(decode_bits)
RUN = "r" * 32


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


class _Phase:
    def __init__(self, phase_id):
        self.id = phase_id


@pytest.fixture(scope="module", params=BACKENDS)
def db(request, tmp_path_factory):
    """A real database (SQLite, PostgreSQL) with one run and one fit phase to hang values on."""
    path = fresh_db(request, tmp_path_factory.mktemp("values"), request.param)
    engine, _ = open_database(path)
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(insert(Run).values(id=RUN, name="values", status=Status.FINISHED, started_at=now))
        phase_id = conn.execute(
            insert(Phase).values(run_id=RUN, seq=0, kind=PhaseKind.FIT, status=Status.FINISHED, started_at=now)
        ).inserted_primary_key[0]
    return path, engine, _Phase(phase_id)


def epoch_round_trip(db, logs):
    path, engine, phase = db
    keys = KeyCache()
    with engine.begin() as conn:
        for table in (EpochValue, RunMetric, Epoch):
            conn.execute(delete(table))
        apply(conn, keys, InsertEpoch(RUN, phase, 0, None, datetime(2026, 1, 1), None, logged_items(logs)))
    tidy = Store(path).epochs("values", tidy=True)
    return dict(zip(tidy["key"], tidy["value"]))


def batch_round_trip(db, logs):
    path, engine, phase = db
    with engine.begin() as conn:
        conn.execute(delete(BatchExtra))
        conn.execute(delete(Batch))
        write_batches(conn, KeyCache(), [BatchRecord(phase, 0, 0, 0, 0.5, logs)])
    frame = Store(path).batches("values")
    return {k: frame[k].iloc[0] for k in frame.columns if k not in ("phase", "phase_seq", "call", "epoch", "batch", "step", "elapsed")}


@settings(max_examples=200, deadline=None)
@given(values=st.lists(any_float64, min_size=1, max_size=20))
def test_every_float64_bit_pattern_round_trips_as_an_epoch_value(db, values):
    logs = {f"k{i}": v for i, v in enumerate(values)}
    back = epoch_round_trip(db, logs)
    assert {k: bits(v) for k, v in back.items()} == {k: bits(v) for k, v in logs.items()}


@settings(max_examples=200, deadline=None)
@given(values=st.lists(any_float64, min_size=1, max_size=20))
def test_every_float64_bit_pattern_round_trips_as_a_packed_batch_value(db, values):
    logs = {f"k{i}": v for i, v in enumerate(values)}
    back = batch_round_trip(db, logs)
    assert {k: bits(float(v)) for k, v in back.items()} == {k: bits(v) for k, v in logs.items()}


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=-(2**200), max_value=2**200),
        st.text(),
        st.booleans(),
        st.none(),
    ),
    key=st.text(min_size=0, max_size=50),
)
@example(value=None, key="phase_seq")
@example(value="x", key="log:")
def test_ints_text_bools_none_and_unicode_keys_round_trip(db, value, key):
    shown = shown_key(key)  # a key named like a frame column is shown as log:NAME
    for back in (epoch_round_trip(db, {key: value}), batch_round_trip(db, {key: value})):
        assert list(back) == [shown]
        got = back[shown]
        if isinstance(value, bool):
            assert got == float(value)
        elif isinstance(value, int):
            assert got == value
            assert type(got) is (int if abs(value) > 2**53 else float) or isinstance(got, np.floating)
        elif value is None:
            assert got is None
        else:
            assert got == value


def test_bits_are_stored_only_where_the_float_column_cannot_carry_the_value():
    assert encode(1.5) == (1.5, None, None)
    assert encode(math.inf) == (math.inf, None, None)
    assert encode(math.nan)[0] is None and encode(math.nan)[1] == bits(math.nan)
    assert encode(-0.0)[1] == bits(-0.0) != bits(0.0)
    assert encode(np.float32(0.1)) == (float(np.float32(0.1)), None, None)
    assert encode(np.array(2.5)) == encode(2.5)
    assert encode(np.array([1, 2]))[2] == "[1, 2]"
    assert encode(2**64)[0] == float(2**64) and encode(2**64)[2] == str(2**64) and encode(2**64)[1] is not None
    assert encode(10**400)[0] == math.inf and encode(10**400)[2] == str(10**400)
    assert decode(*encode(-0.0)) == 0.0 and math.copysign(1, decode(*encode(-0.0))) < 0


def test_a_batch_packs_floats_and_keeps_the_rest_as_extras():
    packed = pack_batch({"loss": 1.5, "n": 3, "flag": True, "word": "hi", "none": None, "big": 2**60 + 1})
    assert packed.keys == ("loss", "n", "flag")
    assert struct.unpack("<3d", packed.vals) == (1.5, 3.0, 1.0)
    assert [k for k, _ in packed.extras] == ["word", "none", "big"]


def test_nested_dicts_are_flattened_with_a_slash():
    assert list(logged_items({"a": {"b": 1.0, "c": {"d": 2.0}}, "e": 3.0})) == ["a/b", "a/c/d", "e"]


def test_a_key_collision_after_flattening_is_not_silent():
    import tracker

    with pytest.warns(tracker.TrackingWarning, match="flatten to the key 'a/b'"):
        items = logged_items({"a/b": 1.0, "a": {"b": 2.0}})
    assert items == {"a/b": 2.0}
