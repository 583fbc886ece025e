"""OfficeFlow's domain events: CloudEvents 1.0 (``cloudevents``) written to the transactional outbox (``outbox``)
in the transaction of their change, for a relay to publish to Kafka (docs/events.md)."""
