"""Kiln across processes: the bus on NATS JetStream.

`settings.BusSettings` is the `bus` section of the plant configuration and `settings.make_bus`
the bus it describes (in-process without a URL). `nats_bus.NatsBus` and the modules it uses
(`nats_values`, `nats_events`, `nats_pull`) need the `nats` extra; `codec` (the wire format)
and `subjects` (names on the broker) are pure. Importing this package loads none of them.
"""
