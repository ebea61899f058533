"""The name a logs key is given on the read side: its own, unless it could be read as a column of the tracker's.

One rule, applied wherever a logs key is named (frame columns, the ``key``
of tidy frames and of ``Store.metrics``, ``metric_keys``, ``best:KEY``,
``eval:KEY``, the CLI's tables, CSV and JSON, the reports, plots, watch and
the dashboard): a key named like one of the ``RESERVED`` columns, or whose
name begins with ``log:``, is shown as ``log:NAME``; every other key keeps its
name. So ``df["val_loss"]`` is the logged ``val_loss``, ``df["epoch"]`` is
always Keras' epoch index, a logged ``epoch`` is ``df["log:epoch"]``, and a
key literally named ``log:epoch`` is ``log:log:epoch``: no two keys, and no
key and column, share a name. Where a key is asked for (``sort="best:KEY"``,
``--metric``), both its shown and its logged name are understood.

Imports neither Keras nor TensorFlow, nor pandas.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["RESERVED", "LOG_PREFIX", "shown_key", "logged_key", "asked_key"]

#: The prefix of a logs key shown under another name.
LOG_PREFIX = "log:"

#: Every column the tracker itself puts in a frame where logs keys are
#: columns too: the epoch, batch and evaluation frames (wide and tidy), the
#: runs listing and the overview (whose ``best:``/``final:`` sort adds the
#: columns ``KEY`` and ``KEY_epoch``: hence ``best``, ``stopped``,
#: ``restored``), and ``Store.which`` (``file``, ``monitor``, ``is_best``,
#: ``is_restored``, ``saved_as``).
RESERVED = frozenset({
    "run_id", "phase", "phase_seq", "call", "epoch", "batch", "step", "elapsed", "started_at", "ended_at",
    "redone", "superseded", "status", "key", "value",
    "name", "model_name", "param_count", "host", "pid", "phases", "epochs", "heartbeat_at",
    "duration_s", "metric", "best", "best_epoch", "stopped", "stopped_epoch", "restored", "restored_epoch",
    "file", "monitor", "is_best", "is_restored", "saved_as",
})


@lru_cache(maxsize=65536)
def shown_key(name: str) -> str:
    """Return the name the read side gives the logs key ``name`` (``log:NAME`` or ``name``)."""
    if name in RESERVED or name.startswith(LOG_PREFIX):
        return LOG_PREFIX + name
    return name


def logged_key(shown: str) -> str:
    """Return the logged name of a key shown as ``shown`` (the inverse of ``shown_key``).

    A name without the prefix is taken as logged: ``logged_key("epoch")`` is
    ``"epoch"``, like ``logged_key("log:epoch")``.
    """
    return shown[len(LOG_PREFIX):] if shown.startswith(LOG_PREFIX) else shown


def asked_key(name: str) -> str:
    """Return the shown name of a key a user asked for by its shown or its logged name."""
    return shown_key(logged_key(name))
