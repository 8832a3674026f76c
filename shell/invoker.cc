#include "shell/invoker.h"

#include <grpcpp/client_context.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace telekern::shell {
namespace {

using google::protobuf::Message;

// Cancels `context` once `cancel` turns true, until destroyed.
class CancelWatcher {
 public:
  CancelWatcher(grpc::ClientContext& context, const std::atomic<bool>* cancel) {
    if (cancel == nullptr) return;
    thread_ = std::jthread([&context, cancel, this](std::stop_token stop) {
      std::unique_lock lock(mutex_);
      while (!stop.stop_requested()) {
        if (cancel->load()) {
          context.TryCancel();
          return;
        }
        wake_.wait_for(lock, std::chrono::milliseconds(20));
      }
    });
  }
  ~CancelWatcher() {
    if (thread_.joinable()) {
      thread_.request_stop();
      wake_.notify_all();
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::jthread thread_;
};

}  // namespace

grpc::Status invoke(const std::shared_ptr<grpc::Channel>& channel, const Invocation& invocation,
                    const std::function<void(const Message&)>& on_response) {
  const auto* method = invocation.method;
  std::string path = "/" + method->service()->full_name() + "/" + method->name();
  grpc::internal::RpcMethod::RpcType type =
      method->client_streaming()
          ? (method->server_streaming() ? grpc::internal::RpcMethod::BIDI_STREAMING
                                        : grpc::internal::RpcMethod::CLIENT_STREAMING)
          : (method->server_streaming() ? grpc::internal::RpcMethod::SERVER_STREAMING
                                        : grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::internal::RpcMethod rpc(path.c_str(), type, channel);
  grpc::ClientContext context;
  if (invocation.timeout.count() > 0) {
    context.set_deadline(std::chrono::system_clock::now() + invocation.timeout);
  }
  std::unique_ptr<Message> response(invocation.response_prototype->New());
  CancelWatcher watcher(context, invocation.cancel);
  if (invocation.requests.empty() && !method->client_streaming()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message");
  }

  switch (type) {
    case grpc::internal::RpcMethod::NORMAL_RPC: {
      auto status = grpc::internal::BlockingUnaryCall<Message, Message>(
          channel.get(), rpc, &context, *invocation.requests.front(), response.get());
      if (status.ok()) on_response(*response);
      return status;
    }
    case grpc::internal::RpcMethod::SERVER_STREAMING: {
      std::unique_ptr<grpc::ClientReader<Message>> reader(
          grpc::internal::ClientReaderFactory<Message>::Create(channel.get(), rpc, &context,
                                                               *invocation.requests.front()));
      while (reader->Read(response.get())) on_response(*response);
      return reader->Finish();
    }
    case grpc::internal::RpcMethod::CLIENT_STREAMING: {
      std::unique_ptr<grpc::ClientWriter<Message>> writer(
          grpc::internal::ClientWriterFactory<Message>::Create(channel.get(), rpc, &context,
                                                               response.get()));
      bool open = true;
      for (const auto* request : invocation.requests) {
        if (!(open = writer->Write(*request))) break;
      }
      if (open && invocation.more_requests && !invocation.requests.empty()) {
        std::unique_ptr<Message> next(invocation.requests.front()->New());
        while (invocation.more_requests(*next)) {
          if (!writer->Write(*next)) break;  // the server ended the call: Finish says why
          next->Clear();
        }
      }
      writer->WritesDone();
      auto status = writer->Finish();
      if (status.ok()) on_response(*response);
      return status;
    }
    case grpc::internal::RpcMethod::BIDI_STREAMING: {
      std::unique_ptr<grpc::ClientReaderWriter<Message, Message>> stream(
          grpc::internal::ClientReaderWriterFactory<Message, Message>::Create(channel.get(), rpc,
                                                                              &context));
      std::thread writer([&] {
        for (const auto* request : invocation.requests) {
          if (!stream->Write(*request)) break;
        }
        stream->WritesDone();
      });
      while (stream->Read(response.get())) on_response(*response);
      writer.join();
      return stream->Finish();
    }
    default:
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method type");
  }
}

}  // namespace telekern::shell
