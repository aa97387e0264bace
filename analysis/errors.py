"""The loader's error: raised by analysis.ingest and by the source adapters (analysis.sources), caught by the
command line and the UI, which show its message as one line."""
from __future__ import annotations


class LoadError(Exception):
    """A load that cannot go ahead; the message names the file and what is wrong."""
