"""Domain errors: each carries a one-line message fit for a user (never a traceback)."""

from enum import IntEnum


def one_line(text: str, limit: int | None = 400) -> str:
    """`text` as one line: runs of whitespace, line breaks included, become one space; beyond
    `limit` characters it is cut, ending with an ellipsis (None: never cut)."""
    words = " ".join(text.split())
    return words if limit is None or len(words) <= limit else words[: limit - 1] + "…"


class ExitCode(IntEnum):
    """What `harness` exits with, the same for every command (README, "Exit codes")."""
    OK = 0
    FAILED = 1  # something measured went wrong: a variant failed to build or serve
    BAD_INPUT = 2  # a bad option, manifest, results file or reference: fix and rerun
    BUDGET = 3  # a size budget is broken (run --check, compare --check)
    NO_ENGINE = 4  # no Docker engine answers
    INTERRUPTED = 130  # Ctrl-C; SIGTERM is 143, as shells report it


class HarnessError(Exception):
    """A user-facing failure; str(err) is one line that names what and why."""


class EngineUnavailable(HarnessError):
    """No Docker engine answers."""


class BuildFailed(HarnessError):
    """A build stream reported an error."""

    def __init__(self, message: str, log_tail: list[str] | None = None,
                 step_images: list[str] | None = None):
        super().__init__(message)
        self.log_tail = log_tail or []
        self.step_images = step_images or []  # images the build made before it failed
