"""The command layer: one module per `btc` subcommand (DESIGN.md, Layout).

Each module calls the parts (data, models, engine, bench, report), which return values and
never print, and shows the result: rich tables and lines on stdout, progress and notes on
stderr (`btc.commands.ui`). `btc/cli.py` only parses options and calls `run(...)` here.
"""
