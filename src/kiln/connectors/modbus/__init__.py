"""Modbus TCP: a pure register codec (`codec`), a read planner (`plan`) and a thin client."""
