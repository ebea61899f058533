"""``python -m tracker.cli ...`` runs the same CLI as the installed ``tracker`` command."""

from tracker.cli import main

main()
