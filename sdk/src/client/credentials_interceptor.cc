#include "telekern/credentials_interceptor.h"

namespace telekern {
namespace {

class CredentialsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit CredentialsInterceptor(const CredentialsHeader& header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      auto* metadata = methods->GetSendInitialMetadata();
      if (metadata->count("authorization") == 0 && metadata->count("x-api-key") == 0) {
        auto [key, value] = header_();
        if (!key.empty()) metadata->emplace(std::move(key), std::move(value));
      }
    }
    methods->Proceed();
  }

 private:
  const CredentialsHeader& header_;  // owned by the factory, which outlives the channel's calls
};

class CredentialsInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CredentialsInterceptorFactory(CredentialsHeader header) : header_(std::move(header)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CredentialsInterceptor(header_);  // gRPC owns interceptors
  }

 private:
  CredentialsHeader header_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> credentials_interceptor(
    CredentialsHeader header) {
  return std::make_unique<CredentialsInterceptorFactory>(std::move(header));
}

}  // namespace telekern
