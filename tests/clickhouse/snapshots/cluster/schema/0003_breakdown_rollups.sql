CREATE TABLE IF NOT EXISTS adpulse.breakdown_hourly_local ON CLUSTER adpulse
(
    hour DateTime('UTC'),
    dimension LowCardinality(String),
    campaign_id UInt32,
    value LowCardinality(String),
    impressions UInt64,
    clicks UInt64,
    conversions UInt64,
    spend_micros UInt64,
    revenue_micros UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dimension, campaign_id, value)
TTL hour + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS adpulse.breakdown_hourly ON CLUSTER adpulse
AS adpulse.breakdown_hourly_local
ENGINE = Distributed(adpulse, adpulse, breakdown_hourly_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.breakdown_hourly_mv ON CLUSTER adpulse
TO adpulse.breakdown_hourly_local
AS SELECT
    toStartOfHour(event_time) AS hour,
    dim.1 AS dimension,
    campaign_id,
    dim.2 AS value,
    countIf(event_type = 'impression') AS impressions,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'conversion') AS conversions,
    sum(cost_micros) AS spend_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events_local
ARRAY JOIN [('country', toString(country)), ('device_type', toString(device_type))] AS dim
GROUP BY hour, dimension, campaign_id, value;

CREATE TABLE IF NOT EXISTS adpulse.publisher_hourly_local ON CLUSTER adpulse
(
    hour DateTime('UTC'),
    publisher_id UInt32,
    impressions UInt64,
    clicks UInt64,
    conversions UInt64,
    spend_micros UInt64,
    revenue_micros UInt64
)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, publisher_id)
TTL hour + INTERVAL 90 DAY
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS adpulse.publisher_hourly ON CLUSTER adpulse
AS adpulse.publisher_hourly_local
ENGINE = Distributed(adpulse, adpulse, publisher_hourly_local, rand());

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.publisher_hourly_mv ON CLUSTER adpulse
TO adpulse.publisher_hourly_local
AS SELECT
    toStartOfHour(event_time) AS hour,
    publisher_id,
    countIf(event_type = 'impression') AS impressions,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'conversion') AS conversions,
    sum(cost_micros) AS spend_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events_local
GROUP BY hour, publisher_id;
