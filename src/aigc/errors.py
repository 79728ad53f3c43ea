"""One error type for everything a user can get wrong.

Every message names the field, what was expected and how to fix it (STYLE.md #11); the CLI prints it
without a traceback and exits with status 2, and the studio turns it into a JSON 4xx.
"""

from __future__ import annotations

from typing import Callable, Collection, Sequence


class AigcError(ValueError):
    """A problem with the user's input, data or files, explained so that they can fix it."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None):
        self.field = field
        self.fix = fix
        text = f"{field}: {message}" if field else message
        if fix:
            text = f"{text}\n  fix: {fix}"
        super().__init__(text)


class ConfigError(AigcError):
    """A config, preset or override that does not validate."""


class DataError(AigcError):
    """A dataset that is missing, empty or malformed."""


class CheckpointError(AigcError):
    """A checkpoint that is missing, corrupt or does not match its config."""


def known_names(names: Sequence[str], known: Collection[str], *, unknown: Callable[[str], str], nothing: str, field: str, fix: str) -> tuple[str, ...]:
    """`names` in the order given without repeats, when there is at least one and each is in `known`; else an
    AigcError on `field`: `unknown(first stranger)`, or `nothing` when no name was given."""
    strangers = [name for name in names if name not in known]
    if strangers or not names:
        raise AigcError(unknown(strangers[0]) if strangers else nothing, field=field, fix=fix)
    return tuple(dict.fromkeys(names))


class AigcWarning(UserWarning):
    """Something the user should know that does not stop the work (a fallback taken, a setting changed);
    the CLI prints it as one `warning:` line."""
