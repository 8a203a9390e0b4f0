"""One exception hierarchy for the whole harness.

User errors (``HarnessError`` subclasses) carry a one-line message that says what went wrong,
where, and how to fix it. The CLI maps them to exit code 2 without a traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A suite file, a CLI flag or a model option is invalid."""


class UnknownModelError(ConfigError):
    """A model name is not in the registry."""


class DuplicateModelError(HarnessError):
    """Two builders were registered under the same name."""


class DatasetUnavailable(HarnessError):
    """A dataset is neither on disk nor downloadable."""


class ResultsError(HarnessError):
    """A run directory or record file is missing, malformed or of an unsupported schema."""


class MeasurementError(HarnessError):
    """A measurement could not be taken (OOM, unsupported mode, compile failure...)."""


class IncomparableError(HarnessError):
    """Two runs were taken in environments that cannot be compared (device, dtype, torch version)."""
