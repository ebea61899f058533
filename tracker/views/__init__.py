"""What people see of the record outside the dashboard: terminal tables, files, plots, the live view.

* ``tables``: which columns and rows the CLI's tables show (read results
  turned into rows for people: call labels, short ids, durations);
* ``terminal``: how a table's cells are written and laid out to fit the terminal;
* ``output``: one writer for the three output formats, table, CSV and JSON;
* ``export``: reports and query results to CSV/JSON files, and CSV read back exactly;
* ``plots``: PNG/SVG/PDF plots of runs, decisions marked;
* ``watch``: ``tracker watch``, a live view of a running run.

They read through ``tracker.store`` and ``tracker.reports`` and import
neither Keras nor TensorFlow.
"""
