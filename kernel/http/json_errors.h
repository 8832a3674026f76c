// How the HTTP gateway reports a gRPC status: the HTTP status that matches
// the code (the table in the README's gateway section) and a JSON body
// {"code": N, "status": "NAME", "message": "..."}.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "telekern/status.h"  // status_code_name

namespace telekern::kernel::http {

int http_status_for(grpc::StatusCode code);
std::string error_json(grpc::StatusCode code, std::string_view message);

}  // namespace telekern::kernel::http
