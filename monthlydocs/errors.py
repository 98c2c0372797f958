"""Every error the core raises on purpose.

Each face turns these into its own kind of message (one stderr line for the CLI, a page in
the client's language for the portal). The core never speaks HTTP or exit codes.
"""


class MonthlydocsError(Exception):
    """Base class: the message is meant to be read by a person as it is."""


class ConfigNotFound(MonthlydocsError):
    pass


class ConfigError(MonthlydocsError):
    pass


class WorkspaceExists(MonthlydocsError):
    pass


class ClientNotFound(MonthlydocsError):
    pass


class AmbiguousClient(MonthlydocsError):
    pass


class DuplicateClient(MonthlydocsError):
    pass


class InvalidEmail(MonthlydocsError):
    pass


class InvalidPhone(MonthlydocsError):
    pass


class InvalidLanguage(MonthlydocsError):
    pass


class TemplateNotFound(MonthlydocsError):
    pass


class TemplateError(MonthlydocsError):
    pass


class InvalidPeriod(MonthlydocsError):
    pass


class ChecklistNotFound(MonthlydocsError):
    pass


class ImportFileError(MonthlydocsError):
    """The file as a whole cannot be read (empty, binary, undecodable, no header)."""


class DeliveryError(MonthlydocsError):
    """A message could not be handed to its channel; a later run may succeed."""


class PermanentDeliveryError(DeliveryError):
    """The channel refused the message for good (a bad address): no retry."""


class UploadError(MonthlydocsError):
    """An upload was refused; ``code`` names the rule for translated messages."""

    code = "upload"


class UploadTooLarge(UploadError):
    code = "too_large"


class UnsupportedFileType(UploadError):
    code = "bad_type"


class EmptyUpload(UploadError):
    code = "empty"


class LinkNotFound(MonthlydocsError):
    """Unknown, rotated or expired portal token (deliberately not told apart)."""


class ItemLocked(MonthlydocsError):
    """The item or document has been reviewed and can no longer be changed by the client."""


class DaemonRunning(MonthlydocsError):
    """Another `monthlydocs daemon` holds the workspace's lock."""
