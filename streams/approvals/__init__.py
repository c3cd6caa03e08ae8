"""The approval deadline processor: an approval nobody decided in time gets its default action."""

from omium.streams.approvals._processor import APPROVALS, ApprovalDeadlineProcessor

__all__ = ["APPROVALS", "ApprovalDeadlineProcessor"]
