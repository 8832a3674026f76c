#include "shell/reflection_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <set>

#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

namespace v1 = grpc::reflection::v1;

// v1 and v1alpha share the wire format, so the v1 messages serve both.
constexpr const char* kMethods[] = {
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"};

absl::Status to_absl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<ReflectionSnapshot> fetch_with(const std::shared_ptr<grpc::Channel>& channel,
                                              const char* method_name,
                                              std::chrono::milliseconds timeout, bool only_list) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::internal::RpcMethod method(method_name, grpc::internal::RpcMethod::BIDI_STREAMING, channel);
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ServerReflectionRequest, v1::ServerReflectionResponse>>
      stream(grpc::internal::ClientReaderWriterFactory<
             v1::ServerReflectionRequest, v1::ServerReflectionResponse>::Create(channel.get(),
                                                                                method, &context));
  auto fail = [&](std::string what) -> absl::Status {
    context.TryCancel();
    grpc::Status status = stream->Finish();
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) return to_absl(status);
    return absl::UnavailableError(what);
  };

  v1::ServerReflectionRequest request;
  request.set_list_services("*");
  v1::ServerReflectionResponse response;
  if (!stream->Write(request) || !stream->Read(&response)) return fail("reflection stream closed");
  ReflectionSnapshot snapshot;
  for (const auto& service : response.list_services_response().service()) {
    snapshot.services.push_back(service.name());
  }
  if (!only_list) {
    // Pipelined: every request first, then every answer.
    for (const auto& name : snapshot.services) {
      request.set_file_containing_symbol(name);
      if (!stream->Write(request)) return fail("reflection stream closed");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < snapshot.services.size(); ++i) {
      if (!stream->Read(&response)) return fail("reflection stream closed");
      if (response.has_error_response()) continue;  // a service without descriptors
      for (const auto& bytes : response.file_descriptor_response().file_descriptor_proto()) {
        google::protobuf::FileDescriptorProto file;
        if (!file.ParseFromString(bytes)) return fail("bad file descriptor from reflection");
        if (seen.insert(file.name()).second) snapshot.files.push_back(std::move(file));
      }
    }
  }
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return to_absl(status);
  return snapshot;
}

}  // namespace

absl::StatusOr<ReflectionSnapshot> fetch_reflection(const std::shared_ptr<grpc::Channel>& channel,
                                                    std::chrono::milliseconds timeout,
                                                    bool only_list) {
  auto snapshot = fetch_with(channel, kMethods[0], timeout, only_list);
  if (snapshot.ok() || snapshot.status().code() != absl::StatusCode::kUnimplemented)
    return snapshot;
  return fetch_with(channel, kMethods[1], timeout, only_list);
}

}  // namespace telekern::shell
