ALTER TABLE adpulse.events_per_minute
    MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE adpulse.events_per_minute
    ADD PROJECTION IF NOT EXISTS totals_by_minute
    (
        SELECT minute, event_type, sum(events), sum(cost_micros), sum(revenue_micros)
        GROUP BY minute, event_type
    );

ALTER TABLE adpulse.events_per_minute
    MATERIALIZE PROJECTION totals_by_minute;
