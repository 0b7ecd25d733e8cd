ALTER TABLE adpulse.campaign_hourly
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE adpulse.campaign_hourly
    ADD PROJECTION IF NOT EXISTS totals
    (
        SELECT hour, event_type, sum(events), sum(cost_micros), sum(revenue_micros)
        GROUP BY hour, event_type
    );

ALTER TABLE adpulse.campaign_hourly
    MATERIALIZE PROJECTION totals;

ALTER TABLE adpulse.campaign_daily
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE adpulse.campaign_daily
    ADD PROJECTION IF NOT EXISTS totals
    (
        SELECT day, sum(impressions), sum(clicks), sum(conversions), sum(spend_micros), sum(revenue_micros)
        GROUP BY day
    );

ALTER TABLE adpulse.campaign_daily
    MATERIALIZE PROJECTION totals;

ALTER TABLE adpulse.breakdown_hourly
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE adpulse.breakdown_hourly
    ADD PROJECTION IF NOT EXISTS totals
    (
        SELECT hour, dimension, value, sum(impressions), sum(clicks), sum(conversions), sum(spend_micros), sum(revenue_micros)
        GROUP BY hour, dimension, value
    );

ALTER TABLE adpulse.breakdown_hourly
    MATERIALIZE PROJECTION totals;
