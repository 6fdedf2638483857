"""User-facing errors. The CLI prints their message on one line and exits with code 2."""


class TtgenError(Exception):
    """Bad input from the user: a spec, a config, a checkpoint or a command-line argument.

    The message names the place (file:line, directory, argument) and what is wrong.
    """

    exit_code = 2


class CheckpointError(TtgenError):
    """A local Hugging Face checkpoint folder is missing, incomplete or corrupt."""
