// grpc.reflection.v1.ServerReflection over the process's generated descriptor
// pool. Debian 12's gRPC ships only v1alpha (served by grpc++_reflection);
// newer tools ask v1 first.
#pragma once

#include <grpcpp/impl/service_type.h>

#include <memory>
#include <string>
#include <vector>

namespace telekern::kernel {

// `service_names` is what list_services answers.
std::unique_ptr<grpc::Service> make_reflection_v1_service(std::vector<std::string> service_names);

}  // namespace telekern::kernel
