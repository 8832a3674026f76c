// Request fields marked (telekern.options.v1.field_cli).prompt_secret: which
// ones a request needs and lacks (so telesh asks for them without echo on a
// terminal, or names the flag and the variable in batch mode).
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <vector>

namespace telekern::shell {

struct MissingSecret {
  google::protobuf::Message* holder = nullptr;  // where to set it (inside the request)
  const google::protobuf::FieldDescriptor* field = nullptr;
  std::string flag;                  // "ssh.password"
  std::string prompt;                // "SSH password"
  std::string env;                   // telesh's variable read first ("" = none)
  std::vector<std::string> instead;  // other flags that make it unneeded ("ssh.password-env")
};

// The secrets `request` needs by their options' rules and does not have;
// `args` are the command's words (a flag given explicitly, even empty, counts).
std::vector<MissingSecret> missing_secrets(google::protobuf::Message& request,
                                           const std::vector<std::string>& args);

// "SSH password needed: pass --ssh.password, set TELESH_SSH_PASSWORD, or give
// --ssh.password-env or --ssh.key-file instead (no terminal to ask on)".
std::string missing_secret_message(const MissingSecret& secret);

}  // namespace telekern::shell
