"""The wiring of unioncat: settings (one table), the Catalogue, the pipeline, jobs (in-process and rq), the CLI.

The only package that may import every library package; nothing imports it back, and it never imports
``demo`` (the demo consortium adds its command through the ``unioncat.commands`` entry points).
"""

__version__ = "0.1.0"
