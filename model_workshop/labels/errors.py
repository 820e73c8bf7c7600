"""Typed errors. Each message says what is wrong and what to do about it; the CLI prints it and exits 2."""


class LabelsError(Exception):
    """Base class for every error the labels tool reports to a user."""


class DatasetError(LabelsError, ValueError):
    """A dataset (or a file being imported into one) is malformed."""


class ManifestError(DatasetError):
    """A Ground Truth manifest line cannot be understood."""


class CheckFailed(LabelsError):
    """`check` found errors in the data."""


class TrainingUnavailable(LabelsError):
    """The training dependencies (torch, the crop-classifier trainer) are not installed."""
