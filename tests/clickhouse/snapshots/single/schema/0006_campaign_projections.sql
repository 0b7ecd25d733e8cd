ALTER TABLE adpulse.campaign_hourly
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, hour
    );

ALTER TABLE adpulse.campaign_hourly
    MATERIALIZE PROJECTION by_campaign;

ALTER TABLE adpulse.events_per_minute
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, minute
    );

ALTER TABLE adpulse.events_per_minute
    MATERIALIZE PROJECTION by_campaign;

ALTER TABLE adpulse.breakdown_hourly
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, dimension, hour
    );

ALTER TABLE adpulse.breakdown_hourly
    MATERIALIZE PROJECTION by_campaign;
