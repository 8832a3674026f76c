-- etl_dead_letter: created by the etl module if missing (modern types; see modules/etl/README.md for
-- the fallbacks it applies on older servers such as Debian's 18.16).
CREATE TABLE IF NOT EXISTS `etl_dead_letter` (
  `timestamp` DateTime64(3) DEFAULT now64(),
  `pipeline` String,
  `processor` String,
  `reason` String,
  `topic` String,
  `partition` Int32,
  `offset` Int64,
  `key` Nullable(String),
  `value` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(`timestamp`)
ORDER BY (`pipeline`, `timestamp`)
SETTINGS index_granularity = 8192;
