"""``python -m jepa`` runs the same entry point as the ``jepa`` console script."""

from jepa.cli import console_main

if __name__ == "__main__":
    console_main()
