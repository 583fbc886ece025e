"""OfficeFlow's domain events leaving the store: the outbox relay (``relay``)."""
