#include "kernel/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace telekern::kernel {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

template <typename FileResponse>
void add_file_with_dependencies(const FileDescriptor* file, std::set<std::string>& seen,
                                FileResponse* out) {
  if (file == nullptr || !seen.insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    add_file_with_dependencies(file->dependency(i), seen, out);
  }
}

// Answers one request into `response`; the same code serves both versions.
template <typename Request, typename Response>
void answer(const Request& request, Response& response, const std::vector<std::string>& services) {
  response.Clear();
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  const auto* pool = DescriptorPool::generated_pool();
  std::set<std::string> seen;
  auto error = [&](grpc::StatusCode code, const std::string& message) {
    auto* out = response.mutable_error_response();
    out->set_error_code(static_cast<int>(code));
    out->set_error_message(message);
  };
  switch (request.message_request_case()) {
    case Request::kListServices:
      for (const auto& name : services) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      return;
    case Request::kFileByFilename: {
      const auto* file = pool->FindFileByName(request.file_by_filename());
      if (file == nullptr)
        return error(grpc::StatusCode::NOT_FOUND, "file not found: " + request.file_by_filename());
      return add_file_with_dependencies(file, seen, response.mutable_file_descriptor_response());
    }
    case Request::kFileContainingSymbol: {
      const auto* file = pool->FindFileContainingSymbol(request.file_containing_symbol());
      if (file == nullptr)
        return error(grpc::StatusCode::NOT_FOUND,
                     "symbol not found: " + request.file_containing_symbol());
      return add_file_with_dependencies(file, seen, response.mutable_file_descriptor_response());
    }
    case Request::kFileContainingExtension: {
      const auto& wanted = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(wanted.containing_type());
      const auto* extension =
          type ? pool->FindExtensionByNumber(type, wanted.extension_number()) : nullptr;
      if (extension == nullptr) return error(grpc::StatusCode::NOT_FOUND, "extension not found");
      return add_file_with_dependencies(extension->file(), seen,
                                        response.mutable_file_descriptor_response());
    }
    case Request::kAllExtensionNumbersOfType: {
      const auto* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr)
        return error(grpc::StatusCode::NOT_FOUND,
                     "type not found: " + request.all_extension_numbers_of_type());
      std::vector<const google::protobuf::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* out = response.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* field : extensions) out->add_extension_number(field->number());
      return;
    }
    default:
      return error(grpc::StatusCode::UNIMPLEMENTED, "unknown reflection request");
  }
}

template <typename Generated, typename Request, typename Response>
class ReflectionService final : public Generated::CallbackService {
 public:
  explicit ReflectionService(ServiceLister services) : services_(std::move(services)) {}

  grpc::ServerBidiReactor<Request, Response>* ServerReflectionInfo(
      grpc::CallbackServerContext*) override {
    class Reactor final : public grpc::ServerBidiReactor<Request, Response> {
     public:
      explicit Reactor(const ServiceLister& services) : services_(services) {
        this->StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) return this->Finish(grpc::Status::OK);
        answer(request_, response_, services_());
        this->StartWrite(&response_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return this->Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
        this->StartRead(&request_);
      }
      void OnDone() override { delete this; }

     private:
      const ServiceLister& services_;
      Request request_;
      Response response_;
    };
    return new Reactor(services_);
  }

 private:
  ServiceLister services_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_reflection_v1_service(ServiceLister services) {
  namespace v1 = grpc::reflection::v1;
  return std::make_unique<ReflectionService<v1::ServerReflection, v1::ServerReflectionRequest,
                                            v1::ServerReflectionResponse>>(std::move(services));
}

std::unique_ptr<grpc::Service> make_reflection_v1alpha_service(ServiceLister services) {
  namespace v1alpha = grpc::reflection::v1alpha;
  return std::make_unique<
      ReflectionService<v1alpha::ServerReflection, v1alpha::ServerReflectionRequest,
                        v1alpha::ServerReflectionResponse>>(std::move(services));
}

}  // namespace telekern::kernel
