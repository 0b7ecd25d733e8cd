CREATE TABLE IF NOT EXISTS adpulse.ingest_state
(
    key String,
    topic String,
    partition UInt32,
    first_offset Int64,
    last_offset Int64,
    token String,
    consumer String,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = EmbeddedRocksDB
PRIMARY KEY key;
