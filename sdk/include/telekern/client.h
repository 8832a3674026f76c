// Remote C++ client for telekernd: one channel with credentials, retries and
// defaults, typed stubs for every service, helpers for streaming calls.
//
//   telekern::Client client({.target = "127.0.0.1:7070", .api_key = "..."});
//   auto kernel = client.stub<telekern::kernel::v1::Kernel>();
//   telekern::kernel::v1::GetInfoResponse info;
//   grpc::Status status = kernel->GetInfo(client.context().get(), {}, &info);
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace telekern {

struct ClientOptions {
  // host:port of telekernd; empty means $TELEKERN_ADDR or 127.0.0.1:7070.
  std::string target;
  // Credentials: at most one of them is sent, the token when both are set.
  std::string api_key;  // sent as `x-api-key`
  std::string token;    // JWT from Kernel/Login, sent as `authorization: Bearer ...`
  // TLS: the server certificate is checked against `ca_file` (system roots when empty).
  bool tls = false;
  std::string ca_file;
  std::string cert_file;  // client certificate, for servers that require one
  std::string key_file;
  // Deadline of contexts made by context() when no other is given.
  std::chrono::milliseconds default_deadline{std::chrono::seconds(30)};
  // Calls failing with UNAVAILABLE are retried up to this many attempts in
  // total, by gRPC's retry policy (exponential backoff with jitter).
  int max_attempts = 4;
  // Wait for the channel to connect instead of failing at once while the
  // daemon is down or swapping its server (context() only).
  bool wait_for_ready = false;

  // Options from TELEKERN_ADDR, TELEKERN_API_KEY, TELEKERN_TOKEN.
  static ClientOptions from_environment();
};

class Client {
 public:
  explicit Client(ClientOptions options = ClientOptions::from_environment());

  // A stub for any generated service, e.g. stub<telekern::kernel::v1::Kernel>().
  // Every call through it carries the client's credentials.
  template <typename Service>
  std::unique_ptr<typename Service::Stub> stub() const {
    return Service::NewStub(channel_);
  }

  // A context with the default (or the given) deadline and wait_for_ready.
  // Use a fresh one per call. A zero deadline means none (long streams).
  std::unique_ptr<grpc::ClientContext> context(
      std::optional<std::chrono::milliseconds> deadline = std::nullopt) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // Why the channel could not be built as asked (e.g. an unreadable CA
  // file); OK otherwise. Calls then fail with UNAVAILABLE.
  const absl::Status& status() const { return status_; }
  const ClientOptions& options() const { return options_; }

  // Replaces the bearer token sent with every later call.
  void set_token(std::string token);
  std::string token() const;

  // Kernel/Login: exchanges user and password for a JWT and keeps it.
  absl::StatusOr<std::string> login(const std::string& user, const std::string& password);

  // Blocks until the daemon answers a health check or `timeout` passes.
  absl::Status wait_until_ready(std::chrono::milliseconds timeout) const;

  struct Credentials;  // shared with the channel's interceptor

 private:
  ClientOptions options_;
  std::shared_ptr<Credentials> credentials_;
  std::shared_ptr<grpc::Channel> channel_;
  absl::Status status_;
};

// Reads every message of a server-streaming call into `on_message` (return
// false from it to cancel the call) and returns the call's status.
template <typename Response>
absl::Status read_stream(grpc::ClientContext& context,
                         grpc::ClientReaderInterface<Response>& reader,
                         const std::function<bool(const Response&)>& on_message) {
  Response response;
  while (reader.Read(&response)) {
    if (!on_message(response)) {
      context.TryCancel();
      while (reader.Read(&response)) {
      }
      reader.Finish();
      return absl::CancelledError("cancelled by the reader");
    }
  }
  grpc::Status status = reader.Finish();
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Calls a server-streaming method of a typed stub and hands each message to
// `on_message`:  telekern::read_server_stream(client, *echo, &Echo::Stub::Count, request, print);
// (Not named stream(): that is the telekern::stream namespace of stream.h.)
template <typename Stub, typename Request, typename Response>
absl::Status read_server_stream(const Client& client, Stub& stub,
                                std::unique_ptr<grpc::ClientReader<Response>> (Stub::*method)(
                                    grpc::ClientContext*, const Request&),
                                const Request& request,
                                const std::function<bool(const Response&)>& on_message,
                                std::chrono::milliseconds deadline = std::chrono::milliseconds(0)) {
  auto context = client.context(deadline);
  auto reader = (stub.*method)(context.get(), request);
  return read_stream<Response>(*context, *reader, on_message);
}

}  // namespace telekern
