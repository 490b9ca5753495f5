"""rtml: a real-time ML runtime on Ray."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtml")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
