#include "shell/file_upload.h"

#include <cerrno>
#include <cstring>

#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::shell {

using google::protobuf::FieldDescriptor;

absl::StatusOr<std::unique_ptr<FileUpload>> FileUpload::prepare(
    const google::protobuf::MethodDescriptor& method, google::protobuf::Message& first) {
  const auto& cli = method.options().GetExtension(telekern::options::v1::cli);
  if (!cli.has_upload() || !method.client_streaming()) return nullptr;
  const auto& upload = cli.upload();
  const auto* type = method.input_type();
  const auto* path_field = type->FindFieldByName(upload.path_field());
  const auto* data_field = type->FindFieldByName(upload.data_field());
  auto is_text = [](const FieldDescriptor* field) {
    return field != nullptr && !field->is_repeated() &&
           (field->type() == FieldDescriptor::TYPE_STRING ||
            field->type() == FieldDescriptor::TYPE_BYTES);
  };
  if (!is_text(path_field) || !is_text(data_field))
    return absl::InternalError(str_cat(
        method.full_name(), ": cli upload names '", upload.path_field(), "' and '",
        upload.data_field(), "', which must be string or bytes fields of ", type->full_name()));
  auto result = std::unique_ptr<FileUpload>(new FileUpload());
  result->path_ = first.GetReflection()->GetString(first, path_field);
  if (result->path_.empty())
    return absl::InvalidArgumentError(
        str_cat("give the local file to upload (", path_field->name(), ")"));
  result->file_.open(result->path_, std::ios::binary);
  if (!result->file_)
    return absl::NotFoundError(
        str_cat("cannot read '", result->path_, "': ", std::strerror(errno)));
  result->data_field_ = data_field;
  if (upload.chunk_bytes() > 0) result->chunk_bytes_ = upload.chunk_bytes();
  std::string chunk;
  result->read_chunk(chunk);
  if (!result->error_.empty()) return absl::DataLossError(result->error_);
  first.GetReflection()->SetString(&first, data_field, std::move(chunk));
  return result;
}

bool FileUpload::read_chunk(std::string& chunk) {
  chunk.resize(chunk_bytes_);
  file_.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(file_.gcount()));
  if (file_.bad()) {
    error_ = str_cat("reading '", path_, "' after ", bytes_, " bytes: ", std::strerror(errno));
    return false;
  }
  bytes_ += chunk.size();
  return !chunk.empty();
}

bool FileUpload::next(google::protobuf::Message& next) {
  std::string chunk;
  if (!read_chunk(chunk)) return false;
  next.GetReflection()->SetString(&next, data_field_, std::move(chunk));
  return true;
}

}  // namespace telekern::shell
