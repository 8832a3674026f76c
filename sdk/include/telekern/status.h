// Status conversion at the gRPC boundary: engines return absl::Status,
// adapters translate in exactly one place.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

namespace telekern {

inline grpc::Status to_grpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status from_grpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// "NOT_FOUND", "UNAVAILABLE", ...: the canonical name of a status code.
const char* status_code_name(grpc::StatusCode code);

}  // namespace telekern
