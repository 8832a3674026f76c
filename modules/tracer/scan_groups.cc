#include "scan_groups.h"

#include <algorithm>
#include <map>

namespace telekern::tracer {

int64_t records_to_scan(const PartitionPlan& plan) {
  if (plan.stop < 0) return 1;
  return std::max<int64_t>(0, plan.stop - std::max<int64_t>(plan.start, 0));
}

std::vector<ScanGroup> group_partitions(const std::vector<ScanUnit>& plans, size_t groups) {
  struct Item {
    size_t plan;
    const PartitionPlan* partition;
    int64_t weight;
  };
  std::vector<Item> items;
  std::vector<ScanGroup> result;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].partitions.empty()) {
      result.push_back({{i}, {plans[i]}});
      continue;
    }
    for (const auto& partition : plans[i].partitions)
      items.push_back({i, &partition, records_to_scan(partition)});
  }
  size_t count = std::min(std::max<size_t>(groups, 1), items.size());
  if (count == 0) return result;
  // Largest first onto the least loaded group (ties: the lower index), stable
  // so equal partitions keep topic and partition order.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.weight > b.weight; });
  std::vector<int64_t> load(count, 0);
  std::vector<std::map<size_t, std::vector<PartitionPlan>>> shares(count);
  for (const auto& item : items) {
    size_t target = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[target] += std::max<int64_t>(item.weight, 1);
    shares[target][item.plan].push_back(*item.partition);
  }
  for (auto& share : shares) {
    ScanGroup group;
    for (auto& [plan, partitions] : share) {
      std::sort(partitions.begin(), partitions.end(),
                [](const auto& a, const auto& b) { return a.partition < b.partition; });
      group.plan_index.push_back(plan);
      group.units.push_back({plans[plan].topic, std::move(partitions)});
    }
    result.push_back(std::move(group));
  }
  return result;
}

}  // namespace telekern::tracer
