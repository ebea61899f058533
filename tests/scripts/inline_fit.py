"""A fresh process whose FIRST fit builds the tracker inline, in the call:

    model.fit(x, y, callbacks=[..., TrackingCallback(db), ...])

Python looks up ``model.fit`` before it evaluates the arguments, so whatever
the callback's ``__init__`` patches onto Keras misses that very call.

Usage: python inline_fit.py DB --style STYLE --scenario SCENARIO

STYLE is how the user imported the tracker:
  from                 import keras; from tracker import TrackingCallback
  module-before-keras  import tracker; import keras   (then tracker.TrackingCallback)
  module-after-keras   import keras; import tracker   (then tracker.TrackingCallback)

SCENARIO:
  decisions  EarlyStopping(restore_best_weights=True) that never stops (and
             restores, because a LearningRateScheduler kicks the rate up in
             the last epoch), and a ReduceLROnPlateau that also reduces at
             the end of the last epoch.
  raise      a callback raises in epoch 2.

Prints one JSON line: the ground truth seen by spies in this process.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

parser = argparse.ArgumentParser()
parser.add_argument("db")
parser.add_argument("--style", choices=["from", "module-before-keras", "module-after-keras"], required=True)
parser.add_argument("--scenario", choices=["decisions", "raise"], required=True)
args = parser.parse_args()

if args.style == "module-before-keras":
    import tracker  # noqa: E402
    import keras  # noqa: E402
elif args.style == "module-after-keras":
    import keras  # noqa: E402
    import tracker  # noqa: E402
else:
    import keras  # noqa: E402
    from tracker import TrackingCallback  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import truth_helpers as th  # noqa: E402  (imports keras, never tracker.tracking)


class RaiseAt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("boom in epoch 2")


x, y = th.make_data(64)
model = th.make_model(learning_rate=0.01)
copies, lr_spy = th.WeightCopies(), th.LRSpy()
out = {"backend": keras.backend.backend()}

if args.scenario == "decisions":
    LAST = 4
    # A rate of 5 in the last epoch makes it the worst: EarlyStopping restores an earlier one.
    kick = keras.callbacks.LearningRateScheduler(lambda e, lr: 5.0 if e == LAST else lr)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
    # mode=max with a huge min_delta: the loss "never improves" after epoch 0;
    # patience 2 reduces at the end of epochs 2 and 4 (the last).
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", mode="max", min_delta=1e9, patience=2, factor=0.5)
    fit_kw = dict(batch_size=16, epochs=LAST + 1, validation_split=0.25, verbose=0)
    if args.style == "from":
        history = model.fit(x, y, callbacks=[copies, kick, TrackingCallback(args.db, run_name="inline"), stopper, plateau, lr_spy], **fit_kw)
    else:
        history = model.fit(x, y, callbacks=[copies, kick, tracker.TrackingCallback(args.db, run_name="inline"), stopper, plateau, lr_spy], **fit_kw)
    changes = lr_spy.changes(include_final=True)
    out.update(
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        last_epoch=copies.last_epoch,
        restored_epoch=copies.epoch_of(model.get_weights()),
        best_epoch=stopper.best_epoch,
        stopped_epoch=stopper.stopped_epoch,
        wait=stopper.wait,
        best=float(stopper.best),
        lr_by_epoch={str(k): v for k, v in lr_spy.by_epoch.items()},
        lr_changes=changes,
        lr_sources=[
            ["LearningRateScheduler", "on_epoch_begin"] if epoch == LAST else ["ReduceLROnPlateau", "on_epoch_end"]
            for epoch, *_ in changes
        ],
    )
else:
    fit_kw = dict(batch_size=16, epochs=5, verbose=0)
    try:
        if args.style == "from":
            model.fit(x, y, callbacks=[copies, TrackingCallback(args.db, run_name="inline"), RaiseAt()], **fit_kw)
        else:
            model.fit(x, y, callbacks=[copies, tracker.TrackingCallback(args.db, run_name="inline"), RaiseAt()], **fit_kw)
    except RuntimeError as exc:
        out.update(raised=f"{type(exc).__name__}: {exc}", epochs_done=sorted(copies.copies))
    else:
        out.update(raised=None)

print(json.dumps(out), flush=True)
