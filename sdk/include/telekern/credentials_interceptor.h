// A client interceptor that adds one credentials header to every outgoing call
// that carries none yet, for typed stubs and plain ClientContexts alike.
#pragma once

#include <grpcpp/support/client_interceptor.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace telekern {

// {"x-api-key", KEY} or {"authorization", "Bearer JWT"}; an empty name adds nothing.
using CredentialsHeader = std::function<std::pair<std::string, std::string>()>;

// `header` is asked once per call, so credentials may change between calls.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> credentials_interceptor(
    CredentialsHeader header);

}  // namespace telekern
