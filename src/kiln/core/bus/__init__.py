"""The bus between Kiln's engines: the protocol (`protocol`) and the embedded default (`inprocess`).

Importing this package loads no broker client; the NATS JetStream implementation lives in
`kiln.cluster.nats_bus` (the `nats` extra).
"""

from kiln.core.bus.inprocess import InProcessBus, Subscription
from kiln.core.bus.protocol import (
    Bus,
    BusError,
    BusFullError,
    Command,
    CommandError,
    CommandFailure,
    CommandHandler,
    CommandServer,
    CommandTimeoutError,
    DurabilityAck,
    Event,
    EventDelivery,
    EventStats,
    EventSubscription,
    NoResponderError,
    Overflow,
    SubscriptionClosed,
    SubscriptionStats,
    ValueSubscription,
)

__all__ = [
    "Bus",
    "BusError",
    "BusFullError",
    "Command",
    "CommandError",
    "CommandFailure",
    "CommandHandler",
    "CommandServer",
    "CommandTimeoutError",
    "DurabilityAck",
    "Event",
    "EventDelivery",
    "EventStats",
    "EventSubscription",
    "InProcessBus",
    "NoResponderError",
    "Overflow",
    "Subscription",
    "SubscriptionClosed",
    "SubscriptionStats",
    "ValueSubscription",
]
