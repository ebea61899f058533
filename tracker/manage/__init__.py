"""Run management: rename, tag, note, delete (to the trash), undelete and gc.

``RunManager`` is the write front (``tracker.RunManager``); ``tracker.Store``
stays read-only. The statements are in ``tracker.db.edits`` and
``tracker.db.purge``. Imports neither Keras nor TensorFlow.
"""

from tracker.manage.manager import Collected, RunManager, RunRow

__all__ = ["RunManager", "RunRow", "Collected"]
