"""Logged values survive SQLite exactly: property tests over every float64 bit pattern."""

import math
import struct
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from tracker.db.migrate import open_database
from tracker.db.tables import Epoch, EpochValue, Phase, PhaseKind, Run, Status
from tracker.db.values import decode, decode_bits, encode
from tracker.db.values import value_rows

any_float64 = st.integers(min_value=-(2**63), max_value=2**63 - 1).map(decode_bits)


def bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


@pytest.fixture(scope="module")
def epoch_row(tmp_path_factory):
    """A real database with one run, phase and epoch to hang values on."""
    engine, _ = open_database(str(tmp_path_factory.mktemp("values") / "v.db"))
    now = datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(insert(Run).values(id="r" * 32, status=Status.RUNNING, started_at=now))
        phase_id = conn.execute(
            insert(Phase).values(run_id="r" * 32, seq=0, kind=PhaseKind.FIT, status=Status.RUNNING, started_at=now)
        ).inserted_primary_key[0]
        epoch_id = conn.execute(insert(Epoch).values(phase_id=phase_id, epoch=0, ended_at=now)).inserted_primary_key[0]
    return engine, epoch_id


def round_trip(epoch_row, logs):
    engine, epoch_id = epoch_row
    with engine.begin() as conn:
        conn.execute(delete(EpochValue))
        conn.execute(insert(EpochValue), value_rows(logs, epoch_id=epoch_id))
        rows = conn.execute(select(EpochValue.key, EpochValue.value, EpochValue.bits, EpochValue.text)).all()
    return {key: decode(value, b, text) for key, value, b, text in rows}


@settings(max_examples=300, deadline=None)
@given(values=st.lists(any_float64, min_size=1, max_size=20))
def test_every_float64_bit_pattern_round_trips_through_sqlite(epoch_row, values):
    logs = {f"k{i}": v for i, v in enumerate(values)}
    back = round_trip(epoch_row, logs)
    assert {k: bits(v) for k, v in back.items()} == {k: bits(v) for k, v in logs.items()}


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
def test_ints_text_bools_none_and_unicode_keys_round_trip(epoch_row, value, key):
    back = round_trip(epoch_row, {key: value})
    assert list(back) == [key]
    got = back[key]
    if isinstance(value, bool):
        assert got == float(value)
    elif isinstance(value, int):
        assert got == value
        assert type(got) is (int if abs(value) > 2**53 else float)
    else:
        assert got == value


def test_sql_value_column_is_usable_and_null_only_for_nan():
    assert encode(1.5) == (1.5, bits(1.5), None)
    assert encode(math.nan)[0] is None
    assert encode(-0.0)[1] == bits(-0.0) != bits(0.0)
    assert encode(np.float32(0.1))[0] == float(np.float32(0.1))
    assert encode(np.array(2.5)) == encode(2.5)
    assert encode(np.array([1, 2]))[2] == "[1, 2]"
    assert encode(2**64)[0] == float(2**64) and encode(2**64)[2] == str(2**64)
    assert encode(10**400)[0] == math.inf and encode(10**400)[2] == str(10**400)


def test_nested_dicts_are_flattened_with_a_slash():
    rows = value_rows({"a": {"b": 1.0, "c": {"d": 2.0}}, "e": 3.0}, epoch_id=1)
    assert [r["key"] for r in rows] == ["a/b", "a/c/d", "e"]


def test_a_key_collision_after_flattening_is_not_silent():
    import tracker

    with pytest.warns(tracker.TrackingWarning, match="flatten to the key 'a/b'"):
        rows = value_rows({"a/b": 1.0, "a": {"b": 2.0}}, epoch_id=1)
    assert [(r["key"], r["value"]) for r in rows] == [("a/b", 2.0)]
