"""Kiln's own subsystems, declared as a third party declares one (`kiln.api.subsystem`) and
registered under the `kiln.subsystems` entry points in `pyproject.toml`."""
