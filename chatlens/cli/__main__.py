"""``python -m chatlens.cli``."""

from chatlens.cli import main

main()
