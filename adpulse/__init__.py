"""adpulse: real-time ad analytics on ClickHouse, Kafka and your own AWS account."""

__version__ = "0.1.0"
