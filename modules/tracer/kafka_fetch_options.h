// Fetch settings of the kafka source's consumers (modules.tracer.kafka.fetch_*).
#pragma once

namespace telekern::tracer {

// How a trace's consumers fetch. A trace is a bulk scan from a start offset
// to a known end, so it asks for few, full fetches and answers at once when a
// broker has nothing (the end is known; waiting only adds latency).
struct KafkaFetchOptions {
  int fetch_max_bytes = 52428800;           // fetch.max.bytes: one fetch response
  int max_partition_fetch_bytes = 8388608;  // max.partition.fetch.bytes: per partition
  int fetch_wait_max_ms = 10;               // fetch.wait.max.ms: broker wait when empty
  int queued_max_messages_kbytes = 131072;  // queued.max.messages.kbytes: prefetched per consumer
  // Read record batches straight from the partition leaders when the
  // connection is plaintext and isolation read_uncommitted (kafka_batch_fetch.h).
  bool batch_scan = true;
};

}  // namespace telekern::tracer
