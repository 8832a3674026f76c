// A gRPC server on a free 127.0.0.1 port with the services a test registers,
// and insecure channels to it; shut down (5 s grace) when destroyed. For
// tests of the SDK's stream mechanics against a real server.
#pragma once

#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace telekern::testing {

class LoopbackGrpcServer {
 public:
  // `add` registers the test's services on the builder.
  explicit LoopbackGrpcServer(const std::function<void(grpc::ServerBuilder&)>& add) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    add(builder);
    server_ = builder.BuildAndStart();
  }
  ~LoopbackGrpcServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  LoopbackGrpcServer(const LoopbackGrpcServer&) = delete;
  LoopbackGrpcServer& operator=(const LoopbackGrpcServer&) = delete;

  bool started() const { return server_ != nullptr && port_ > 0; }
  std::shared_ptr<grpc::Channel> channel() const {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace telekern::testing
