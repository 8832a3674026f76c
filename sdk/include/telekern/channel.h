// The one place client channels are built: TLS (CA, client cert and key),
// credentials (API key or bearer token, added to every call), keepalive and
// gRPC's retry policy. Used by telekern::Client, the kernel's channels to
// remote services and the modules' channels to other daemons.
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/channel.h>

#include <chrono>
#include <memory>
#include <string>

#include "telekern/credentials_interceptor.h"

namespace telekern {

struct ChannelOptions {
  std::string target;  // host:port
  // TLS: the server certificate is checked against ca_file (system roots when empty).
  bool tls = false;
  std::string ca_file;
  std::string cert_file;  // client certificate, for servers that require one
  std::string key_file;
  // Credentials: `credentials` is asked once per call when set; otherwise
  // api_key (x-api-key) or token (authorization: Bearer) when not empty.
  CredentialsHeader credentials;
  std::string api_key;
  std::string token;
  // Keepalive pings on an idle connection (0 = off), so a dead peer is seen
  // without waiting for a call's deadline.
  std::chrono::milliseconds keepalive{0};
  // Calls failing with UNAVAILABLE are retried up to this many attempts in
  // total (1 = no retry), with exponential backoff and jitter; at most 5.
  int max_attempts = 1;
  // Largest message received (-1 = unlimited, 0 = gRPC's default of 4 MiB).
  int max_receive_bytes = -1;
};

// A channel as `options` ask; INVALID_ARGUMENT names a TLS file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> make_channel(const ChannelOptions& options);

}  // namespace telekern
