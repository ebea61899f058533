"""Integrations with the tools people tune and scale with: one module per tool.

Each module imports its tool lazily and only when that tool is in use; the
core (``tracker.record``, ``tracker.store``, the CLI) never imports them, and
the read side needs none of them installed.

* ``keras_tuner``: every execution of every KerasTuner trial is a run of the
  search's experiment, with the oracle's status and score;
* ``optuna``: every Optuna trial that fits is a run of the study's experiment;
  ``optuna.TrialPruned`` ends a run ``pruned`` with the pruner's decision;
* ``ray_tune``: every Ray Tune trial that fits (a function or a
  ``tune.Trainable`` subclass) is a run of the Ray experiment, in whichever
  worker of the cluster runs it (``ray_worker``: what the worker knows);
  a scheduler's stop ends it ``pruned``, a trial Ray restarts continues its
  run; ``ray_driver`` notes in the driver who stopped a trial.

``import tracker`` installs each one as soon as its tool is imported
(``tracker.INSTALLERS``); they fill the core's extension points
(``tracker.record.extensions``). See ``docs/sweeps.md``.
"""
