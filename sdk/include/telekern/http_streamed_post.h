// One HTTP POST whose body is sent while it is still being produced
// (Transfer-Encoding: chunked), for stores that parse a request body as it
// arrives (ClickHouse's INSERT over HTTP): many writes share one request, so
// the store's per-request cost is paid once. The request runs on a thread of
// its own; write() queues bytes, finish() ends the body and waits for the reply.
#pragma once

#include <absl/status/statusor.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "telekern/http_writer.h"

namespace telekern {

class HttpStreamedPost {
 public:
  // Starts the request (connection, headers) to `options.base_url` + `path_and_query`;
  // timeouts, headers and basic auth come from `options` (the retry and breaker
  // settings do not apply: a failed stream is the caller's to send again).
  // INVALID_ARGUMENT for a malformed base URL.
  static absl::StatusOr<std::unique_ptr<HttpStreamedPost>> open(const HttpWriterOptions& options,
                                                                std::string path_and_query,
                                                                std::string content_type);
  // Ends the body if finish() was not called and waits for the request.
  ~HttpStreamedPost();
  HttpStreamedPost(const HttpStreamedPost&) = delete;
  HttpStreamedPost& operator=(const HttpStreamedPost&) = delete;

  // Queues `bytes` for the body. False once the request failed (the
  // connection broke or the server answered early): finish() says why.
  bool write(std::string_view bytes);
  // True when the request already failed; writing more is useless.
  bool failed() const;
  size_t bytes_written() const;
  // Ends the body and waits for the reply: the reply on 2xx, otherwise the
  // status HttpWriter::post() gives for the same answer (UNAVAILABLE for a
  // broken connection or 5xx, ...). Call once.
  absl::StatusOr<HttpReply> finish();

 private:
  HttpStreamedPost(const HttpWriterOptions& options, std::string path_and_query,
                   std::string content_type);
  void run();

  HttpWriterOptions options_;
  std::string path_;
  std::string content_type_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> pending_;  // queued chunks, sent in order
  bool ended_ = false;               // no more writes: send the last chunk
  bool done_ = false;                // the request returned
  size_t bytes_ = 0;
  absl::StatusOr<HttpReply> result_ = absl::UnknownError("request not finished");
  std::thread thread_;
};

}  // namespace telekern
