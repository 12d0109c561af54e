"""`python -m btc` entry point."""

from btc.cli import main

main()
