"""Every name the services share: topics, group, database objects. Change them here only."""

EVENTS_TOPIC = "ad-events"
DLQ_TOPIC = "ad-events-dlq"
CONSUMER_GROUP = "adpulse-ingest"
DATABASE = "adpulse"
CLUSTER = "adpulse"

# Local (per-node) tables. In a cluster each has a Distributed front named without `_local`.
EVENTS_TABLE = "events"
EVENTS_MINUTE_TABLE = "events_per_minute"
EVENTS_HOURLY_TABLE = "campaign_hourly"
CAMPAIGN_DAILY_TABLE = "campaign_daily"
BREAKDOWN_HOURLY_TABLE = "breakdown_hourly"  # by country and device type (migration 0003)
PUBLISHER_HOURLY_TABLE = "publisher_hourly"  # by publisher (migration 0003)
MIGRATIONS_TABLE = "schema_migrations"
MIGRATION_LOCK_TABLE = "schema_migration_lock"
INGEST_STATE_TABLE = "ingest_state"

# Materialized views that feed the rollups from the events table.
EVENTS_MINUTE_VIEW = "events_per_minute_mv"
EVENTS_HOURLY_VIEW = "campaign_hourly_mv"
CAMPAIGN_DAILY_VIEW = "campaign_daily_mv"
BREAKDOWN_HOURLY_VIEW = "breakdown_hourly_mv"
PUBLISHER_HOURLY_VIEW = "publisher_hourly_mv"

# CloudWatch: what the consumer publishes (consumers/cloudwatch.py) and the stack's alarms watch
# (stacks/alarms.py), dimensioned by stack and consumer group so two stacks never mix.
METRICS_NAMESPACE = "adpulse"
CONSUMER_LAG_METRIC = "ConsumerLag"
FRESHNESS_METRIC = "FreshnessSeconds"
STACK_DIMENSION = "Stack"
GROUP_DIMENSION = "ConsumerGroup"
