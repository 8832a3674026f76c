// How the partitions of a trace are shared among its consumers: a source that
// reads any set of partitions with one consumer (kafka) gets at most
// max_parallel groups, each holding partitions of several topics, balanced by
// the records each partition has to scan. One consumer per group means one
// fetch per broker carries every partition of the group it leads (a broker
// answers each fetch with about one stored batch per partition, so fewer,
// fuller fetches), and no consumer is reassigned in the middle of a trace.
#pragma once

#include <cstddef>
#include <vector>

#include "source.h"

namespace telekern::tracer {

// One consumer's share: units of distinct topics, each in `plans` order with
// its partitions in partition order. Units index back into `plans` by topic.
struct ScanGroup {
  std::vector<size_t> plan_index;  // which plan (topic) each unit came from
  std::vector<ScanUnit> units;
};

// Records a partition has left to scan (stop - start), 1 when unknown.
int64_t records_to_scan(const PartitionPlan& plan);

// At most `groups` groups (fewer when there are fewer partitions), greedy
// largest-first onto the least loaded group; a plan without partitions
// (unknown until scanned) becomes a group of its own.
std::vector<ScanGroup> group_partitions(const std::vector<ScanUnit>& plans, size_t groups);

}  // namespace telekern::tracer
