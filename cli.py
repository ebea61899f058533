"""``python cli.py ...`` runs the same CLI as the installed ``tracker`` command."""

from tracker.cli import main

if __name__ == "__main__":
    main()
