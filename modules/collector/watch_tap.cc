#include "watch_tap.h"

#include <condition_variable>
#include <map>

#include "telekern/sleep.h"
#include "telemetry_point.h"

namespace telekern::collector {
using namespace std::chrono_literals;

WatchTap::WatchTap(WatchTapSettings settings, LiveFeed& feed, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)), feed_(feed), log_(std::move(log)) {}

void WatchTap::run(std::stop_token stop) {
  while (sleep_for(100ms, stop)) {
    if (!feed_.has_subscribers()) continue;
    auto config = settings_.stream;
    config.client_id = settings_.group;
    auto consumer = stream::make_consumer(
        config, {settings_.group, {settings_.topic}, stream::StartFrom::kLatest});
    if (!consumer.ok()) {
      log_->warn("watch: cannot read topic '{}': {}; retrying", settings_.topic,
                 consumer.status().ToString());
      if (!sleep_for(1s, stop)) return;
      continue;
    }
    follow(**consumer, stop);
  }
}

void WatchTap::follow(stream::Consumer& consumer, std::stop_token stop) {
  // What was on the topic before the tap started is not live: skip it
  // (the tap's group may resume from an older commit).
  std::map<int32_t, int64_t> live_from;
  if (auto lags = consumer.lag(5s); lags.ok()) {
    for (const auto& lag : *lags) live_from[lag.partition] = lag.high_watermark;
  } else {
    log_->warn("watch: no high watermarks ({}); older points may be shown",
               lags.status().ToString());
  }
  auto last_watched = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    if (feed_.has_subscribers()) {
      last_watched = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_watched > 5s) {
      return;  // nobody watches: stop reading the topic
    }
    auto polled = consumer.poll(1000, 200ms);
    if (!polled.ok()) {
      log_->warn("watch: reading topic '{}': {}; reconnecting", settings_.topic,
                 polled.status().ToString());
      sleep_for(1s, stop);
      return;
    }
    if (polled->empty()) continue;
    std::vector<TelemetryPoint> points;
    for (const auto& record : *polled) {
      auto from = live_from.find(record.partition);
      if (from != live_from.end() && record.offset < from->second) continue;
      auto point = decode_record(record.value);
      if (point.ok()) points.push_back(std::move(*point));
    }
    if (!points.empty()) feed_.publish(points);
    if (auto committed = consumer.commit(*polled); !committed.ok())
      log_->debug("watch: commit: {}", committed.ToString());
  }
}

}  // namespace telekern::collector
