"""User-facing errors. The CLI prints their message on one line and exits with code 2."""


class TtgenError(Exception):
    """Bad input from the user: a spec, a config, a checkpoint or a command-line argument.

    The message names the place (file:line, directory, argument) and what is wrong.
    """

    exit_code = 2


class CheckpointError(TtgenError):
    """A local Hugging Face checkpoint folder is missing, incomplete or corrupt."""


def one_line(text: str) -> str:
    """`text` with every unprintable character (newlines included) escaped: an error is one line,
    whatever a file name or a value in it holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
