-- if_traffic: created by the etl module if missing (modern types; see modules/etl/README.md for
-- the fallbacks it applies on older servers such as Debian's 18.16).
CREATE TABLE IF NOT EXISTS `if_traffic` (
  `start_ts` DateTime64(3, 'UTC') CODEC(Delta,ZSTD),
  `insert_ts` DateTime64(3, 'UTC') DEFAULT now64() CODEC(Delta,ZSTD),
  `policy_originator` LowCardinality(Nullable(String)),
  `policy_level` LowCardinality(Nullable(String)),
  `policy_scopes` Array(LowCardinality(String)),
  `id` LowCardinality(String),
  `ref` Nullable(String),
  `device` LowCardinality(String),
  `name` LowCardinality(String),
  `collector_id` LowCardinality(Nullable(String)),
  `in_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_errors` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_discards` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_errors` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_discards` Nullable(UInt64) CODEC(Delta,ZSTD)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(`start_ts`)
ORDER BY (`id`, `start_ts`)
TTL start_ts + INTERVAL 7 DAY
SETTINGS index_granularity = 8192;
