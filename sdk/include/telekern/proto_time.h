// std::chrono <-> google.protobuf.Timestamp/Duration, for adapters and clients.
#pragma once

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>

namespace telekern {

inline google::protobuf::Timestamp to_timestamp(std::chrono::system_clock::time_point time) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count());
}

inline std::chrono::system_clock::time_point from_timestamp(
    const google::protobuf::Timestamp& time) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(time.seconds()) + std::chrono::nanoseconds(time.nanos())));
}

inline std::chrono::milliseconds to_milliseconds(const google::protobuf::Duration& duration) {
  return std::chrono::milliseconds(
      google::protobuf::util::TimeUtil::DurationToMilliseconds(duration));
}

}  // namespace telekern
