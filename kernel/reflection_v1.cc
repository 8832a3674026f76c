#include "kernel/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace telekern::kernel {
namespace {

namespace v1 = grpc::reflection::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;

// Adds `file` and everything it imports, each once.
void add_file_with_dependencies(const FileDescriptor* file, std::set<std::string>& seen,
                                v1::FileDescriptorResponse* out) {
  if (file == nullptr || !seen.insert(file->name()).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    add_file_with_dependencies(file->dependency(i), seen, out);
  }
}

class ReflectionV1Service final : public v1::ServerReflection::CallbackService {
 public:
  explicit ReflectionV1Service(std::vector<std::string> names) : names_(std::move(names)) {}

  grpc::ServerBidiReactor<v1::ServerReflectionRequest, v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* context) override {
    class Reactor final
        : public grpc::ServerBidiReactor<v1::ServerReflectionRequest, v1::ServerReflectionResponse> {
     public:
      explicit Reactor(const std::vector<std::string>& names) : names_(names) { StartRead(&request_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status::OK);
          return;
        }
        answer();
        StartWrite(&response_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
          return;
        }
        StartRead(&request_);
      }
      void OnDone() override { delete this; }

     private:
      void answer() {
        response_.Clear();
        response_.set_valid_host(request_.host());
        *response_.mutable_original_request() = request_;
        const auto* pool = DescriptorPool::generated_pool();
        std::set<std::string> seen;
        auto not_found = [&](const std::string& what) {
          auto* error = response_.mutable_error_response();
          error->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
          error->set_error_message(what + " not found");
        };
        switch (request_.message_request_case()) {
          case v1::ServerReflectionRequest::kListServices:
            for (const auto& name : names_) {
              response_.mutable_list_services_response()->add_service()->set_name(name);
            }
            break;
          case v1::ServerReflectionRequest::kFileByFilename: {
            const auto* file = pool->FindFileByName(request_.file_by_filename());
            if (file == nullptr) return not_found("file " + request_.file_by_filename());
            add_file_with_dependencies(file, seen, response_.mutable_file_descriptor_response());
            break;
          }
          case v1::ServerReflectionRequest::kFileContainingSymbol: {
            const auto* file = pool->FindFileContainingSymbol(request_.file_containing_symbol());
            if (file == nullptr) return not_found("symbol " + request_.file_containing_symbol());
            add_file_with_dependencies(file, seen, response_.mutable_file_descriptor_response());
            break;
          }
          case v1::ServerReflectionRequest::kFileContainingExtension: {
            const auto& wanted = request_.file_containing_extension();
            const auto* type = pool->FindMessageTypeByName(wanted.containing_type());
            const auto* extension =
                type ? pool->FindExtensionByNumber(type, wanted.extension_number()) : nullptr;
            if (extension == nullptr) return not_found("extension");
            add_file_with_dependencies(extension->file(), seen,
                                       response_.mutable_file_descriptor_response());
            break;
          }
          case v1::ServerReflectionRequest::kAllExtensionNumbersOfType: {
            const auto* type = pool->FindMessageTypeByName(request_.all_extension_numbers_of_type());
            if (type == nullptr) return not_found("type " + request_.all_extension_numbers_of_type());
            std::vector<const google::protobuf::FieldDescriptor*> extensions;
            pool->FindAllExtensions(type, &extensions);
            auto* out = response_.mutable_all_extension_numbers_response();
            out->set_base_type_name(type->full_name());
            for (const auto* field : extensions) out->add_extension_number(field->number());
            break;
          }
          default: {
            auto* error = response_.mutable_error_response();
            error->set_error_code(static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
            error->set_error_message("unknown reflection request");
          }
        }
      }

      const std::vector<std::string>& names_;
      v1::ServerReflectionRequest request_;
      v1::ServerReflectionResponse response_;
    };
    return new Reactor(names_);
  }

 private:
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_reflection_v1_service(std::vector<std::string> service_names) {
  return std::make_unique<ReflectionV1Service>(std::move(service_names));
}

}  // namespace telekern::kernel
