"""Kiln: an open industrial internet platform for factories."""

__version__ = "0.1.0"
