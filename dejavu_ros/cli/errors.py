"""The CLI's own user-facing error (bad flags, missing inputs)."""
from ..errors import DejavuError


class CliError(DejavuError):
    """A user-facing problem: the message names the file, topic or value at fault."""
