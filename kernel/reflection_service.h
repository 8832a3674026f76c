// gRPC server reflection (v1 and v1alpha, same wire format) over the process's
// generated descriptor pool. The kernel serves it itself because the set of
// services changes as modules load and unload.
#pragma once

#include <grpcpp/impl/service_type.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace telekern::kernel {

using ServiceLister = std::function<std::vector<std::string>()>;

std::unique_ptr<grpc::Service> make_reflection_v1_service(ServiceLister services);
std::unique_ptr<grpc::Service> make_reflection_v1alpha_service(ServiceLister services);

}  // namespace telekern::kernel
