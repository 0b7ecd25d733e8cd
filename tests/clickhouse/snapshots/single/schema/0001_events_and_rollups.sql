CREATE TABLE IF NOT EXISTS adpulse.events
(
    event_id UUID,
    event_type Enum8('impression' = 1, 'click' = 2, 'conversion' = 3),
    event_time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    campaign_id UInt32 CODEC(ZSTD(1)),
    ad_id UInt32 CODEC(ZSTD(1)),
    advertiser_id UInt32 CODEC(ZSTD(1)),
    publisher_id UInt32 CODEC(ZSTD(1)),
    country LowCardinality(String),
    device_type Enum8('unknown' = 0, 'mobile' = 1, 'desktop' = 2, 'tablet' = 3, 'ctv' = 4, 'other' = 5),
    cost_micros UInt64 CODEC(T64, ZSTD(1)),
    revenue_micros UInt64 CODEC(T64, ZSTD(1)),
    user_id String CODEC(ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = MergeTree()
PARTITION BY toDate(event_time)
ORDER BY (toStartOfHour(event_time), campaign_id, event_type, event_time)
TTL toDate(event_time) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS adpulse.events_per_minute
(
    minute DateTime('UTC'),
    campaign_id UInt32,
    event_type Enum8('impression' = 1, 'click' = 2, 'conversion' = 3),
    events UInt64,
    cost_micros UInt64,
    revenue_micros UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toDate(minute)
ORDER BY (minute, campaign_id, event_type)
TTL minute + INTERVAL 2 DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.events_per_minute_mv
TO adpulse.events_per_minute
AS SELECT
    toStartOfMinute(event_time) AS minute,
    campaign_id,
    event_type,
    count() AS events,
    sum(cost_micros) AS cost_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events
GROUP BY minute, campaign_id, event_type;

CREATE TABLE IF NOT EXISTS adpulse.campaign_hourly
(
    hour DateTime('UTC'),
    campaign_id UInt32,
    advertiser_id UInt32,
    event_type Enum8('impression' = 1, 'click' = 2, 'conversion' = 3),
    events UInt64,
    cost_micros UInt64,
    revenue_micros UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, campaign_id, advertiser_id, event_type)
TTL hour + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.campaign_hourly_mv
TO adpulse.campaign_hourly
AS SELECT
    toStartOfHour(event_time) AS hour,
    campaign_id,
    advertiser_id,
    event_type,
    count() AS events,
    sum(cost_micros) AS cost_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events
GROUP BY hour, campaign_id, advertiser_id, event_type;

CREATE TABLE IF NOT EXISTS adpulse.campaign_daily
(
    day Date,
    campaign_id UInt32,
    advertiser_id UInt32,
    impressions UInt64,
    clicks UInt64,
    conversions UInt64,
    spend_micros UInt64,
    revenue_micros UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, campaign_id, advertiser_id)
TTL day + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS adpulse.campaign_daily_mv
TO adpulse.campaign_daily
AS SELECT
    toDate(event_time) AS day,
    campaign_id,
    advertiser_id,
    countIf(event_type = 'impression') AS impressions,
    countIf(event_type = 'click') AS clicks,
    countIf(event_type = 'conversion') AS conversions,
    sum(cost_micros) AS spend_micros,
    sum(revenue_micros) AS revenue_micros
FROM adpulse.events
GROUP BY day, campaign_id, advertiser_id;
