#include "shell/catalog.h"

#include <algorithm>

#include "shell/reflection_client.h"
#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

constexpr std::chrono::seconds kReflectionTimeout(10);

const std::vector<std::string> kNoServices;
const std::vector<Command> kNoCommands;

}  // namespace

std::string Command::name() const { return join(path, " "); }

absl::Status Catalog::load(const std::shared_ptr<grpc::Channel>& channel) {
  auto snapshot = fetch_reflection(channel, kReflectionTimeout);
  if (!snapshot.ok()) return snapshot.status();
  auto state = std::make_shared<State>();
  state->services = snapshot->services;
  for (const auto& file : snapshot->files) state->reflected.Add(file);
  for (const auto& service_name : state->services) {
    const auto* service = state->pool.FindServiceByName(service_name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      // Options are parsed with the compiled-in extension registry, so the
      // cli extension reads back even though these descriptors are dynamic.
      if (!method->options().HasExtension(telekern::options::v1::cli)) continue;
      const auto& cli = method->options().GetExtension(telekern::options::v1::cli);
      Command command;
      command.path = split(cli.command(), ' ');
      if (command.path.empty()) continue;
      command.help = cli.help();
      command.positionals.assign(cli.positionals().begin(), cli.positionals().end());
      command.method = method;
      state->commands.push_back(std::move(command));
    }
  }
  std::sort(state->commands.begin(), state->commands.end(),
            [](const Command& a, const Command& b) { return a.path < b.path; });
  state_ = std::move(state);
  return absl::OkStatus();
}

absl::StatusOr<bool> Catalog::refresh(const std::shared_ptr<grpc::Channel>& channel) {
  if (state_ == nullptr) {
    auto status = load(channel);
    if (!status.ok()) return status;
    return true;
  }
  auto listed = fetch_reflection(channel, kReflectionTimeout, /*only_list=*/true);
  if (!listed.ok()) return listed.status();
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  if (sorted(listed->services) == sorted(state_->services)) return false;
  auto status = load(channel);
  if (!status.ok()) return status;
  return true;
}

const std::vector<std::string>& Catalog::services() const {
  return state_ ? state_->services : kNoServices;
}
const std::vector<Command>& Catalog::commands() const {
  return state_ ? state_->commands : kNoCommands;
}
const google::protobuf::DescriptorPool* Catalog::pool() const {
  return state_ ? &state_->pool : nullptr;
}
google::protobuf::MessageFactory& Catalog::factory() const { return state_->factory; }

const google::protobuf::ServiceDescriptor* Catalog::find_service(const std::string& name) const {
  if (!state_) return nullptr;
  if (const auto* service = state_->pool.FindServiceByName(name)) return service;
  const google::protobuf::ServiceDescriptor* found = nullptr;
  for (const auto& full : state_->services) {
    auto dot = full.rfind('.');
    std::string short_name = dot == std::string::npos ? full : full.substr(dot + 1);
    if (to_lower(short_name) != to_lower(name)) continue;
    if (found != nullptr) return nullptr;  // ambiguous
    found = state_->pool.FindServiceByName(full);
  }
  return found;
}

const google::protobuf::MethodDescriptor* Catalog::find_method(const std::string& path) const {
  std::string text = path;
  if (!text.empty() && text.front() == '/') text.erase(0, 1);
  auto cut = text.rfind('/');
  if (cut == std::string::npos) cut = text.rfind('.');
  if (cut == std::string::npos) return nullptr;
  const auto* service = find_service(text.substr(0, cut));
  if (service == nullptr) return nullptr;
  std::string method_name = text.substr(cut + 1);
  if (const auto* method = service->FindMethodByName(method_name)) return method;
  for (int i = 0; i < service->method_count(); ++i) {
    if (to_lower(service->method(i)->name()) == to_lower(method_name)) return service->method(i);
  }
  return nullptr;
}

std::pair<const Command*, size_t> Catalog::match(const std::vector<std::string>& words) const {
  const Command* best = nullptr;
  size_t best_length = 0;
  for (const auto& command : commands()) {
    if (command.path.size() > words.size() || command.path.size() <= best_length) continue;
    if (std::equal(command.path.begin(), command.path.end(), words.begin())) {
      best = &command;
      best_length = command.path.size();
    }
  }
  return {best, best_length};
}

const Command* Catalog::command_for(const google::protobuf::MethodDescriptor* method) const {
  for (const auto& command : commands()) {
    if (command.method == method) return &command;
  }
  return nullptr;
}

}  // namespace telekern::shell
