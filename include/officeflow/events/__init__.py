"""OfficeFlow's domain events: CloudEvents 1.0 (``cloudevents``) written to the transactional outbox (``outbox``)
in the transaction of their change, published to Kafka by the relay (``plugins/officeflow_events/relay.py``;
docs/events.md)."""
