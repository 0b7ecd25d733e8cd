CREATE TABLE IF NOT EXISTS adpulse.breakdown_hourly
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
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, dimension, campaign_id, value)
TTL hour + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.breakdown_hourly_mv
TO adpulse.breakdown_hourly
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
FROM adpulse.events
ARRAY JOIN [('country', toString(country)), ('device_type', toString(device_type))] AS dim
GROUP BY hour, dimension, campaign_id, value;

CREATE TABLE IF NOT EXISTS adpulse.publisher_hourly
(
    hour DateTime('UTC'),
    publisher_id UInt32,
    impressions UInt64,
    clicks UInt64,
    conversions UInt64,
    spend_micros UInt64,
    revenue_micros UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, publisher_id)
TTL hour + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.publisher_hourly_mv
TO adpulse.publisher_hourly
AS SELECT
    toStartOfHour(event_time) AS hour,
    publisher_id,
    countIf(event_type = 'impression') AS impressions,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'conversion') AS conversions,
    sum(cost_micros) AS spend_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events
GROUP BY hour, publisher_id;
