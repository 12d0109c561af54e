"""User-facing errors.

Anything a user can cause (a wrong path, a corrupt file, a bad option) raises `BtcError`; the CLI
prints its message as one line and exits non-zero, without a traceback. Programming errors stay
ordinary exceptions so they keep their traceback.
"""


class BtcError(Exception):
    """An error the user can fix; its message is printed as one line by the CLI."""

    exit_code = 1


class NotImplementedYet(BtcError):
    """A subcommand whose issue has not landed yet."""

    exit_code = 2

    def __init__(self, what: str = "") -> None:
        super().__init__(f"{what}: not implemented yet" if what else "not implemented yet")


class Interrupted(BtcError):
    """Ctrl-C during a command: finished work is kept on disk (atomic writes)."""

    exit_code = 130

    def __init__(self) -> None:
        super().__init__("interrupted: completed work is kept; run the same command again to continue "
                         "(btc train: add --resume; btc cv resumes by itself)")
