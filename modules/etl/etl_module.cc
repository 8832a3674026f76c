// Registers the etl module: its config (the seed's keys, bound to
// EtlOptions), the engine's lifetime and the Etl service.
#include "etl_engine.h"
#include "etl_options.h"
#include "etl_service.h"
#include "telekern/configured_module.h"

namespace telekern::etl {
namespace {

class EtlModule final : public ConfiguredModule<EtlOptions> {
 public:
  EtlModule()
      : ConfiguredModule({"etl", "1.0.0",
                          "consumer -> processors -> writers pipelines into ClickHouse and "
                          "Redis (MetrANOVA pipeline)"},
                         etl_config()) {}

  absl::Status start(ModuleContext& context, EtlOptions options) override {
    if (!options.stream.channel && options.stream.transport == "telekern://127.0.0.1:7070")
      options.stream.channel = context.channel("telekern.broker.v1.Broker");
    if (options.debug) context.logger()->set_level(spdlog::level::debug);
    engine_ = std::make_shared<EtlEngine>(std::move(options), &context.metrics(), context.logger());
    engine_->start();
    service_.attach(engine_);
    return absl::OkStatus();
  }

  std::vector<ServiceBinding> services() override { return {bind_service<v1::Etl>(service_)}; }

  ModuleHealth health() const override {
    auto engine = engine_;
    if (!engine) return {HealthState::kNotServing, "not started"};
    auto problems = engine->problems();
    if (!problems.empty()) return {HealthState::kDegraded, problems};
    return {};
  }

  void stop() override {
    service_.detach();
    if (engine_) {
      engine_->shutdown();
      engine_.reset();
    }
  }

 private:
  EtlService service_;
  std::shared_ptr<EtlEngine> engine_;
};

}  // namespace
}  // namespace telekern::etl

TELEKERN_MODULE(telekern::etl::EtlModule)
