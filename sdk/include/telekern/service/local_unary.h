// Unary handlers the kernel may run without a gRPC call. The HTTP gateway
// answers most requests with one unary call; over the in-process channel that
// call costs more than the rest of the request (two hand-offs to gRPC's
// threads and about half the CPU). A service that derives from
// LocalUnaryMethods and names its unary handlers lets the kernel run them
// straight from the HTTP worker instead, after the same call gate (auth,
// min_role, rate limits) and counted in the same RPC metrics. The handler
// itself is unchanged: it gets a CallbackServerContext the kernel made for the
// call (no client metadata, no peer, no deadline; ModuleContext::caller()
// still names the HTTP caller) and answers through context->DefaultReactor(),
// from any thread, as it would on gRPC.
//
//   class EchoService final : public v1::Echo::CallbackService,
//                             public LocalUnaryMethods<EchoService> {
//    public:
//     EchoService() { serve_locally("Say", &EchoService::Say); }
//     grpc::ServerUnaryReactor* Say(...) override;
//   };
//
// Only for handlers that answer through DefaultReactor() (EngineBinding's
// unary calls all do) and need nothing of the call but its messages and
// caller. Every other method keeps coming over gRPC.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <boost/config.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace telekern {

class BOOST_SYMBOL_VISIBLE LocalUnary {
 public:
  virtual ~LocalUnary() = default;
  // Runs the handler of unary method `method` ("Say") with `request` and
  // `response` of its types, returning the handler's reactor (the context's
  // DefaultReactor()). nullptr, with nothing run, when `method` is not served
  // locally or the messages are not of its types.
  virtual grpc::ServerUnaryReactor* call_local(std::string_view method,
                                               grpc::CallbackServerContext* context,
                                               const google::protobuf::Message& request,
                                               google::protobuf::Message& response) = 0;
  // The methods call_local() serves.
  virtual std::vector<std::string> local_methods() const = 0;
};

// LocalUnary by a table of the service's own handlers (see the top of the file).
template <typename Service>
class LocalUnaryMethods : public LocalUnary {
 public:
  grpc::ServerUnaryReactor* call_local(std::string_view method,
                                       grpc::CallbackServerContext* context,
                                       const google::protobuf::Message& request,
                                       google::protobuf::Message& response) final {
    auto found = methods_.find(method);
    if (found == methods_.end()) return nullptr;
    return found->second(static_cast<Service&>(*this), context, request, response);
  }
  std::vector<std::string> local_methods() const final {
    std::vector<std::string> names;
    for (const auto& [name, thunk] : methods_) names.push_back(name);
    return names;
  }

 protected:
  // Serves `method` (its name in the proto) with `handler`, the service's
  // gRPC handler of that method.
  template <typename Request, typename Response>
  void serve_locally(std::string method,
                     grpc::ServerUnaryReactor* (Service::*handler)(grpc::CallbackServerContext*,
                                                                   const Request*, Response*)) {
    methods_.insert_or_assign(
        std::move(method),
        [handler](Service& service, grpc::CallbackServerContext* context,
                  const google::protobuf::Message& request,
                  google::protobuf::Message& response) -> grpc::ServerUnaryReactor* {
          const auto* typed_request = dynamic_cast<const Request*>(&request);
          auto* typed_response = dynamic_cast<Response*>(&response);
          if (typed_request == nullptr || typed_response == nullptr) return nullptr;
          return (service.*handler)(context, typed_request, typed_response);
        });
  }

 private:
  using Thunk = std::function<grpc::ServerUnaryReactor*(Service&, grpc::CallbackServerContext*,
                                                        const google::protobuf::Message&,
                                                        google::protobuf::Message&)>;
  std::map<std::string, Thunk, std::less<>> methods_;
};

}  // namespace telekern
