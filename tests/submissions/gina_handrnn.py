"""Gina's TimeRNN: the project's own layer under another name (an integrity flag, not an error)."""

from handrnn import TimeRNN  # noqa: F401  (graded as her class)
