// Fetches service names and file descriptors from a server through gRPC
// server reflection (grpc.reflection.v1, falling back to v1alpha).
#pragma once

#include <absl/status/statusor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/channel.h>

#include <chrono>
#include <string>
#include <vector>

namespace telekern::shell {

struct ReflectionSnapshot {
  std::vector<std::string> services;                         // as listed by the server
  std::vector<google::protobuf::FileDescriptorProto> files;  // each file once
};

// One reflection stream: lists the services, then asks for the file of each
// (with its imports). `only_list` skips the files.
absl::StatusOr<ReflectionSnapshot> fetch_reflection(const std::shared_ptr<grpc::Channel>& channel,
                                                    std::chrono::milliseconds timeout,
                                                    bool only_list = false);

}  // namespace telekern::shell
