"""The workshop's typed errors, one of each kind for every tool (labels, crop training, the part detector).

Each message says what is wrong and what to do about it; the commands print it and exit 2.
"""


class WorkshopError(Exception):
    """Base class of every error a workshop command reports to its user."""


class DatasetError(WorkshopError, ValueError):
    """A labelled dataset, folder, class map or file cannot be used as given; the message says what to fix."""
