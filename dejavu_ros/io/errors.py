"""Errors of the io stage; each message names the file, topic or field at fault."""
from __future__ import annotations

from ..errors import DejavuError


class ImageDecodeError(DejavuError, ValueError):
    """An image message cannot be turned into pixels (bad encoding, sizes or payload)."""


class CameraInfoError(DejavuError, ValueError):
    """A CameraInfo message is malformed (the message names the field)."""


class BagError(DejavuError):
    """A bag cannot be opened, read or written."""


class TopicNotFoundError(BagError, KeyError):
    """A requested topic is not in the bag; the message lists the topics that are."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BagDamagedError(BagError):
    """Raised *after* every readable message was yielded, so a caller can report partial work.

    ``messages_read`` counts the messages yielded (after topic filtering), ``last_stamp_ns``
    is the log time of the last one (None when nothing was readable) and ``reason`` says what
    was wrong and where (file and byte offset when known).
    """

    def __init__(self, path: str, reason: str, messages_read: int, last_stamp_ns: int | None):
        self.path = path
        self.reason = reason
        self.messages_read = messages_read
        self.last_stamp_ns = last_stamp_ns
        where = "before the first message" if last_stamp_ns is None else \
            f"after the message logged at {last_stamp_ns * 1e-9:.9f} s"
        super().__init__(f"bag {path} is damaged {where} ({messages_read} messages read): {reason}")


class PoseMessageError(DejavuError, ValueError):
    """A message is not one of the supported pose types (the message names the topic/type)."""
