// Calls any method by its descriptor with dynamic messages: unary, server-,
// client- and bidi-streaming. A call stops early when `cancel` turns true
// (Ctrl-C), which cancels it on the wire.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace telekern::shell {

struct Invocation {
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::vector<const google::protobuf::Message*> requests;
  const google::protobuf::Message* response_prototype = nullptr;
  std::chrono::milliseconds timeout{0};  // 0: no deadline
  const std::atomic<bool>* cancel = nullptr;
  // Client streaming: the messages after `requests` come from here, one at
  // a time (filled into a cleared message; false at the end), so an upload
  // is never held in memory whole.
  std::function<bool(google::protobuf::Message& next)> more_requests;
};

// `on_response` sees every response as it arrives.
grpc::Status invoke(const std::shared_ptr<grpc::Channel>& channel, const Invocation& invocation,
                    const std::function<void(const google::protobuf::Message&)>& on_response);

}  // namespace telekern::shell
