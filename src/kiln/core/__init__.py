"""The kernel: Platform root object, bus, values, clock, configuration, errors.

Nothing in this package imports a protocol library or a database driver.
"""
