#include "kernel/http/console_files.h"

#include <fstream>
#include <sstream>

#include "telekern/strings.h"

namespace telekern::kernel::http {

namespace {

bool accepts_html(const httplib::Request& request) {
  return request.get_header_value("Accept").find("text/html") != std::string::npos;
}

std::string etag_of(const std::filesystem::path& file) {
  std::error_code error;
  auto size = std::filesystem::file_size(file, error);
  auto time = std::filesystem::last_write_time(file, error).time_since_epoch().count();
  std::ostringstream out;
  out << "\"" << std::hex << size << "-" << time << "\"";
  return out.str();
}

}  // namespace

std::string_view ConsoleFiles::content_type(std::string_view extension) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".webmanifest", "application/manifest+json"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (ext == extension) return type;
  }
  return "application/octet-stream";
}

std::optional<std::filesystem::path> ConsoleFiles::resolve(std::string_view url_path) const {
  if (url_path.empty() || url_path.front() != '/') return std::nullopt;
  std::filesystem::path relative;
  for (const auto& part : split(url_path.substr(1), '/')) {
    if (part.empty()) continue;
    if (part.front() == '.' || part.find('\0') != std::string::npos ||
        part.find('\\') != std::string::npos) {
      return std::nullopt;  // "..", "." and hidden files
    }
    relative /= part;
  }
  if (relative.empty()) relative = "index.html";
  auto file = root_ / relative;
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) return std::nullopt;
  return file;
}

bool ConsoleFiles::send_file(const httplib::Request& request, httplib::Response& response,
                             const std::filesystem::path& file, bool immutable) const {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::string etag = etag_of(file);
  response.set_header("Content-Security-Policy", std::string(kContentSecurityPolicy));
  response.set_header("ETag", etag);
  response.set_header("Vary", "Accept-Encoding");  // the endpoint compresses (br, gzip)
  response.set_header("Cache-Control",
                      immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (request.get_header_value("If-None-Match") == etag) {
    response.status = 304;
    return true;
  }
  std::string type(content_type(file.extension().string()));
  // A script built with NAME.js.br / .gz beside it goes out as that file.
  // Its type then names JavaScript in a form httplib does not compress again
  // (it compresses text/* and exact application types on the fly).
  if (file.extension() == ".js") {
    auto accepted = request.get_header_value("Accept-Encoding");
    for (const auto& [encoding, suffix] : {std::pair{"br", ".br"}, std::pair{"gzip", ".gz"}}) {
      if (accepted.find(encoding) == std::string::npos) continue;
      std::ifstream packed(file.string() + suffix, std::ios::binary);
      if (!packed) continue;
      response.set_header("Content-Encoding", encoding);
      response.set_content(
          std::string((std::istreambuf_iterator<char>(packed)), std::istreambuf_iterator<char>()),
          "application/javascript; charset=utf-8");
      return true;
    }
  }
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  response.set_content(std::move(body), type.c_str());
  return true;
}

bool ConsoleFiles::serve(const httplib::Request& request, httplib::Response& response) const {
  if (request.method != "GET" && request.method != "HEAD") return false;
  const std::string& path = request.path;
  if (auto file = resolve(path)) {
    return send_file(request, response, *file, path.starts_with("/assets/"));
  }
  // An app route (/monitor, /broker/topics/x): the browser gets the app.
  auto last = path.substr(path.rfind('/') + 1);
  if (accepts_html(request) && last.find('.') == std::string::npos && !path.starts_with("/rpc/") &&
      !path.starts_with("/api/") && !path.starts_with("/assets/")) {
    if (auto index = resolve("/index.html")) return send_file(request, response, *index, false);
  }
  return false;
}

std::optional<std::filesystem::path> console_directory(const std::string& configured) {
  if (configured == "off") return std::nullopt;
  if (!configured.empty()) return std::filesystem::path(configured);
  std::error_code error;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return std::nullopt;
  auto dir = exe.parent_path().parent_path() / "share" / "telekern" / "web";
  if (!std::filesystem::is_directory(dir, error)) return std::nullopt;
  return dir;
}

}  // namespace telekern::kernel::http
