"""The wiring of unioncat: settings, the ``unioncat`` CLI and the pipeline."""

__version__ = "0.1.0"
