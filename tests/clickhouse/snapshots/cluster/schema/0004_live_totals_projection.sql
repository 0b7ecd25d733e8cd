ALTER TABLE adpulse.events_per_minute_local ON CLUSTER adpulse
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE adpulse.events_per_minute_local ON CLUSTER adpulse
    ADD PROJECTION IF NOT EXISTS totals_by_minute
    (
        SELECT minute, event_type, sum(events), sum(cost_micros), sum(revenue_micros)
        GROUP BY minute, event_type
    );

ALTER TABLE adpulse.events_per_minute_local ON CLUSTER adpulse
    MATERIALIZE PROJECTION totals_by_minute;
