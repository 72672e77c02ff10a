"""Connectors bring values from devices and clients into the namespace."""
