// The web console (web/, built by Vite) served from a directory at `/`:
// a GET or HEAD of a file under it gets the file with its content type;
// index.html answers `/` and, for browsers (Accept: text/html), every path
// without a file extension (the app routes in the browser). index.html is
// revalidated on every load (no-cache + ETag); assets/ names carry a content
// hash and are cached for a year. Console answers carry a CSP that allows
// only the console's own origin (no inline script or style).
#pragma once

#include <httplib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace telekern::kernel::http {

class ConsoleFiles {
 public:
  // The CSP of every console answer.
  static constexpr std::string_view kContentSecurityPolicy =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
      "form-action 'self'; frame-ancestors 'none'";

  explicit ConsoleFiles(std::filesystem::path root) : root_(std::move(root)) {}

  // Answers the request when it is the console's (GET/HEAD of one of its
  // files, or an app route a browser navigates to); false leaves `response`
  // untouched.
  bool serve(const httplib::Request& request, httplib::Response& response) const;

  const std::filesystem::path& root() const { return root_; }

  // "text/javascript; charset=utf-8" for ".js"; octet-stream when unknown.
  static std::string_view content_type(std::string_view extension);

  // The file under root that `url_path` names, or nullopt when the path
  // leaves root (`..`), names a hidden file or is not a regular file.
  std::optional<std::filesystem::path> resolve(std::string_view url_path) const;

 private:
  bool send_file(const httplib::Request& request, httplib::Response& response,
                 const std::filesystem::path& file, bool immutable) const;

  std::filesystem::path root_;
};

// The console directory: `configured` when set ("off" disables: nullopt),
// else ../share/telekern/web next to the running binary when it exists.
std::optional<std::filesystem::path> console_directory(const std::string& configured);

}  // namespace telekern::kernel::http
