ALTER TABLE adpulse.campaign_hourly_local ON CLUSTER adpulse
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, hour
    );

ALTER TABLE adpulse.campaign_hourly_local ON CLUSTER adpulse
    MATERIALIZE PROJECTION by_campaign;

ALTER TABLE adpulse.events_per_minute_local ON CLUSTER adpulse
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, minute
    );

ALTER TABLE adpulse.events_per_minute_local ON CLUSTER adpulse
    MATERIALIZE PROJECTION by_campaign;

ALTER TABLE adpulse.breakdown_hourly_local ON CLUSTER adpulse
    ADD PROJECTION IF NOT EXISTS by_campaign
    (
        SELECT *
        ORDER BY campaign_id, dimension, hour
    );

ALTER TABLE adpulse.breakdown_hourly_local ON CLUSTER adpulse
    MATERIALIZE PROJECTION by_campaign;
