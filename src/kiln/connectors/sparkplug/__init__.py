"""Sparkplug B: the payload codec, topic parsing and the host-application session state machine."""
