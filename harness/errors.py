"""Domain errors: each carries a one-line message fit for a user (never a traceback)."""


def one_line(text: str, limit: int | None = 400) -> str:
    """`text` as one line: runs of whitespace, line breaks included, become one space; beyond
    `limit` characters it is cut, ending with an ellipsis (None: never cut)."""
    words = " ".join(text.split())
    return words if limit is None or len(words) <= limit else words[: limit - 1] + "…"


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
