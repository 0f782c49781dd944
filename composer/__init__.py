"""composer: run multi-container applications described by Compose files."""

__version__ = "0.1.0"
