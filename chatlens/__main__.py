"""``python -m chatlens``: the command line (the same as the ``chatlens`` command)."""

from chatlens.cli import main

main()
