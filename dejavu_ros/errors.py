"""Base of every error the package raises on bad input.

Messages name the file, topic, field or parameter at fault; the CLI prints them as one line
and the node logs them without dying.
"""


class DejavuError(Exception):
    """Bad input or state that a user can fix."""
