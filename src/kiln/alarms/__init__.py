"""Alarms to ISA-18.2 / IEC 62682: condition detection, the state machine, definitions."""
