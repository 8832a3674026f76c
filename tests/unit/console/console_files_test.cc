#include "kernel/http/console_files.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/process.h"

namespace telekern::kernel::http {
namespace {

class ConsoleFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() / "web" / "assets");
    write("web/index.html", "<div id=app></div>");
    write("web/assets/app-1234.js", "console.log(1)");
    write("web/.secret", "no");
    write("outside.txt", "outside");
  }
  void write(const std::string& relative, const std::string& text) {
    std::ofstream(dir_.path() / relative) << text;
  }
  httplib::Response get(const std::string& path, const std::string& accept = "text/html",
                        bool* served = nullptr) {
    httplib::Request request;
    request.method = "GET";
    request.path = path;
    request.headers.emplace("Accept", accept);
    httplib::Response response;
    bool handled = files_.serve(request, response);
    if (served) *served = handled;
    return response;
  }

  testing::TempDir dir_;
  ConsoleFiles files_{dir_.path() / "web"};
};

TEST_F(ConsoleFilesTest, ServesFilesWithTypesAndCaching) {
  auto index = get("/");
  EXPECT_EQ(index.body, "<div id=app></div>");
  EXPECT_EQ(index.get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(index.get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(index.get_header_value("Content-Security-Policy"),
            std::string(ConsoleFiles::kContentSecurityPolicy));
  auto js = get("/assets/app-1234.js", "*/*");
  EXPECT_EQ(js.body, "console.log(1)");
  EXPECT_EQ(js.get_header_value("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(js.get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
}

TEST_F(ConsoleFilesTest, SendsPrecompressedScriptsAsTheyAre) {
  write("web/assets/app-1234.js.br", "BROTLI");
  write("web/assets/app-1234.js.gz", "GZIP");
  httplib::Request request;
  request.method = "GET";
  request.path = "/assets/app-1234.js";
  request.headers.emplace("Accept-Encoding", "gzip, deflate, br");
  httplib::Response br;
  ASSERT_TRUE(files_.serve(request, br));
  EXPECT_EQ(br.body, "BROTLI");
  EXPECT_EQ(br.get_header_value("Content-Encoding"), "br");
  // Not text/*: httplib would compress it a second time.
  EXPECT_EQ(br.get_header_value("Content-Type"), "application/javascript; charset=utf-8");
  request.headers.erase("Accept-Encoding");
  request.headers.emplace("Accept-Encoding", "gzip");
  httplib::Response gzip;
  ASSERT_TRUE(files_.serve(request, gzip));
  EXPECT_EQ(gzip.body, "GZIP");
  EXPECT_EQ(gzip.get_header_value("Content-Encoding"), "gzip");
  request.headers.erase("Accept-Encoding");
  httplib::Response plain;
  ASSERT_TRUE(files_.serve(request, plain));
  EXPECT_EQ(plain.body, "console.log(1)");
  EXPECT_FALSE(plain.has_header("Content-Encoding"));
}

TEST_F(ConsoleFilesTest, RevalidatesWithEtag) {
  auto first = get("/index.html");
  httplib::Request request;
  request.method = "GET";
  request.path = "/index.html";
  request.headers.emplace("If-None-Match", first.get_header_value("ETag"));
  httplib::Response again;
  ASSERT_TRUE(files_.serve(request, again));
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
}

TEST_F(ConsoleFilesTest, FallsBackToIndexForBrowsersOnly) {
  bool served = false;
  EXPECT_EQ(get("/monitor/nodes/n1", "text/html,*/*", &served).body, "<div id=app></div>");
  EXPECT_TRUE(served);
  get("/monitor/nodes/n1", "application/json", &served);
  EXPECT_FALSE(served);
  get("/assets/missing.js", "text/html", &served);
  EXPECT_FALSE(served);
  get("/api/unknown", "text/html", &served);
  EXPECT_FALSE(served);
  get("/rpc/x", "text/html", &served);
  EXPECT_FALSE(served);
}

TEST_F(ConsoleFilesTest, NeverLeavesItsDirectory) {
  EXPECT_FALSE(files_.resolve("/../outside.txt"));
  EXPECT_FALSE(files_.resolve("/assets/../../outside.txt"));
  EXPECT_FALSE(files_.resolve("/.secret"));
  EXPECT_FALSE(files_.resolve("/assets"));  // a directory
  EXPECT_FALSE(files_.resolve("relative"));
  bool served = true;
  get("/../outside.txt", "*/*", &served);
  EXPECT_FALSE(served);
  httplib::Request post;
  post.method = "POST";
  post.path = "/";
  httplib::Response response;
  EXPECT_FALSE(files_.serve(post, response));
}

TEST(ConsoleDirectory, ConfiguredOffOrDefault) {
  EXPECT_FALSE(console_directory("off"));
  EXPECT_EQ(console_directory("/some/dir"), std::filesystem::path("/some/dir"));
  EXPECT_EQ(ConsoleFiles::content_type(".woff2"), "font/woff2");
  EXPECT_EQ(ConsoleFiles::content_type(".exe"), "application/octet-stream");
}

}  // namespace
}  // namespace telekern::kernel::http
