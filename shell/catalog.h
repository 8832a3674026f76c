// What the connected daemon serves, built from server reflection: services,
// their descriptors, and the telesh commands declared by the
// (telekern.options.v1.cli) method options. Holds no per-module knowledge.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

namespace telekern::shell {

struct Command {
  std::vector<std::string> path;  // words, e.g. {"modules", "load"}
  std::string help;
  std::vector<std::string> positionals;  // request field names, in order
  const google::protobuf::MethodDescriptor* method = nullptr;

  std::string name() const;
};

class Catalog {
 public:
  // Replaces everything with what the server reflects now.
  absl::Status load(const std::shared_ptr<grpc::Channel>& channel);
  // Reloads when the set of services changed (a module was loaded or
  // unloaded); one cheap round trip otherwise. Returns whether it reloaded.
  absl::StatusOr<bool> refresh(const std::shared_ptr<grpc::Channel>& channel);

  bool loaded() const { return state_ != nullptr; }
  const std::vector<std::string>& services() const;
  const std::vector<Command>& commands() const;
  const google::protobuf::DescriptorPool* pool() const;
  google::protobuf::MessageFactory& factory() const;

  // Full name ("telekern.kernel.v1.Kernel") or unique short name ("Kernel").
  const google::protobuf::ServiceDescriptor* find_service(const std::string& name) const;
  // "Service/Method" or "Service.Method", service full or short.
  const google::protobuf::MethodDescriptor* find_method(const std::string& path) const;
  // The command whose path is the longest prefix of `words`, and how many words it took.
  std::pair<const Command*, size_t> match(const std::vector<std::string>& words) const;
  const Command* command_for(const google::protobuf::MethodDescriptor* method) const;
  // Keeps the current descriptors and messages alive across a reload, for a
  // caller still holding messages or descriptors from them.
  std::shared_ptr<const void> pin() const { return state_; }

 private:
  struct State {
    std::vector<std::string> services;
    google::protobuf::SimpleDescriptorDatabase reflected;
    google::protobuf::DescriptorPoolDatabase compiled{
        *google::protobuf::DescriptorPool::generated_pool()};
    google::protobuf::MergedDescriptorDatabase merged{&reflected, &compiled};
    google::protobuf::DescriptorPool pool{&merged};
    google::protobuf::DynamicMessageFactory factory{&pool};
    std::vector<Command> commands;
  };
  std::shared_ptr<State> state_;
};

}  // namespace telekern::shell
