"""Errors that carry a message meant for a person: what was wrong and what to do about it."""


class MotiveError(Exception):
    """Base class: the command line and the app show ``str(err)`` as is, without a traceback."""


class VideoError(MotiveError):
    """A video could not be read or does not meet the limits (not a video, corrupt, too short, too long…)."""


class ConfigMismatchError(MotiveError):
    """A query's settings differ from the index's; the message names the differing keys."""


class ModelNotFoundError(MotiveError):
    """A model folder is missing or incomplete; the message says where we looked."""


class TrackerUnavailableError(MotiveError):
    """A motion tracker backend cannot run (missing code or checkpoint); the message says what to provide."""


class GradientError(MotiveError):
    """A gradient came out non-finite or empty; nothing is stored for that clip."""
