"""Typed errors. Each message says what is wrong and what to do about it; the CLI prints it and exits 2."""


from model_workshop.errors import DatasetError, WorkshopError

__all__ = ["CheckFailed", "DatasetError", "LabelsError", "ManifestError", "TrainingUnavailable"]


class LabelsError(WorkshopError):
    """An error of the labels tool itself (arguments, S3, checks); malformed data raise the workshop's
    DatasetError."""


class ManifestError(DatasetError):
    """A Ground Truth manifest line cannot be understood."""


class CheckFailed(LabelsError):
    """`check` found errors in the data."""


class TrainingUnavailable(LabelsError):
    """The training dependencies (torch, the crop-classifier trainer) are not installed."""
