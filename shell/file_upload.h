// Uploads a local file over a client-streaming method whose cli option
// declares `upload` (options.proto's CliUpload): the first request keeps its
// flags and carries the first chunk, each later request the next chunk.
// The file is read one chunk at a time, so its size does not matter.
#pragma once

#include <absl/status/statusor.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <fstream>
#include <memory>
#include <string>

namespace telekern::shell {

class FileUpload {
 public:
  // nullptr when `method` declares no upload; NOT_FOUND when the file named
  // in `first` cannot be read. Fills `first`'s data field with chunk one.
  static absl::StatusOr<std::unique_ptr<FileUpload>> prepare(
      const google::protobuf::MethodDescriptor& method, google::protobuf::Message& first);

  // Fills the data field of `next` with the next chunk; false at the end of
  // the file or on a read error (then error() says which).
  bool next(google::protobuf::Message& next);
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  uint64_t bytes_sent() const { return bytes_; }

 private:
  bool read_chunk(std::string& chunk);

  std::string path_;
  std::ifstream file_;
  const google::protobuf::FieldDescriptor* data_field_ = nullptr;
  size_t chunk_bytes_ = 64 * 1024;
  std::string error_;
  uint64_t bytes_ = 0;
};

}  // namespace telekern::shell
