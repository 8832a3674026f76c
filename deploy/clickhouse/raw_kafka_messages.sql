-- raw_kafka_messages: created by the etl module if missing (modern types; see modules/etl/README.md for
-- the fallbacks it applies on older servers such as Debian's 18.16).
CREATE TABLE IF NOT EXISTS `raw_kafka_messages` (
  `timestamp` DateTime64(3) DEFAULT now64(),
  `topic` String,
  `partition` UInt32,
  `offset` UInt64,
  `key` Nullable(String),
  `value` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(`timestamp`)
ORDER BY (`topic`, `partition`, `offset`)
SETTINGS index_granularity = 8192;
