"""Exception types. Every failure a user can cause maps to one of these, with a message that says what to do."""


class HiersegError(Exception):
    """Base class of every error hierseg raises on purpose."""


class ImageLoadError(HiersegError, ValueError):
    """The input is not a usable image: not an image at all, empty, truncated, too small, or too large."""


class CheckpointError(HiersegError):
    """A checkpoint is missing, corrupt, unreachable, or does not match the model it claims to be."""


class MissingDependencyError(HiersegError, ImportError):
    """An optional dependency is needed for this feature; the message names the pip package to install."""
