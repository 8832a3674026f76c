-- if_port_queue: created by the etl module if missing (modern types; see modules/etl/README.md for
-- the fallbacks it applies on older servers such as Debian's 18.16).
CREATE TABLE IF NOT EXISTS `if_port_queue` (
  `start_ts` DateTime64(3, 'UTC') CODEC(Delta,ZSTD),
  `insert_ts` DateTime64(3, 'UTC') DEFAULT now64() CODEC(Delta,ZSTD),
  `policy_originator` LowCardinality(Nullable(String)),
  `policy_level` LowCardinality(Nullable(String)),
  `policy_scopes` Array(LowCardinality(String)),
  `id` LowCardinality(String),
  `ref` Nullable(String),
  `device` LowCardinality(String),
  `name` LowCardinality(String),
  `queue_num` UInt8,
  `collector_id` LowCardinality(Nullable(String)),
  `in_inprof_dropped_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_inprof_dropped_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_inprof_fwd_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_inprof_fwd_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_outprof_dropped_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_outprof_dropped_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_outprof_fwd_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `in_outprof_fwd_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_inprof_dropped_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_inprof_dropped_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_inprof_fwd_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_inprof_fwd_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_outprof_dropped_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_outprof_dropped_pkts` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_outprof_fwd_bits` Nullable(UInt64) CODEC(Delta,ZSTD),
  `out_outprof_fwd_pkts` Nullable(UInt64) CODEC(Delta,ZSTD)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(`start_ts`)
ORDER BY (`id`, `queue_num`, `start_ts`)
TTL start_ts + INTERVAL 7 DAY
SETTINGS index_granularity = 8192;
