// Prints responses: tables for lists, key/value for single messages, one JSON
// (or YAML) document per response for scripts, a progress bar for streams
// whose messages carry done/total.
#pragma once

#include <google/protobuf/message.h>

#include <ostream>
#include <string>
#include <vector>

namespace telekern::shell {

enum class OutputFormat { kTable, kJson, kYaml };

bool parse_output_format(const std::string& text, OutputFormat* format);

struct Style {
  bool color = false;  // ANSI colors (TTY and no NO_COLOR)
  bool tty = false;    // stdout is a terminal: progress bars, cell truncation

  std::string bold(const std::string& text) const;
  std::string dim(const std::string& text) const;
  std::string red(const std::string& text) const;
  std::string cyan(const std::string& text) const;
};

// Renders the responses of one call.
class ResponsePrinter {
 public:
  ResponsePrinter(std::ostream& out, OutputFormat format, Style style, bool streaming);
  void print(const google::protobuf::Message& response);
  // Ends the call: clears a progress bar and prints what it hid.
  void finish();

 private:
  void print_stream_row(const google::protobuf::Message& response);
  void draw_progress(const google::protobuf::Message& response);

  std::ostream& out_;
  OutputFormat format_;
  Style style_;
  bool streaming_;
  size_t count_ = 0;
  bool progress_ = false;  // drawing a bar instead of printing each message
  std::unique_ptr<google::protobuf::Message> last_;
  std::vector<size_t> stream_widths_;
};

// A table with a header row; columns sized to content.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, const Style& style);
// key/value lines (nested messages indented, repeated messages as tables).
std::string render_message(const google::protobuf::Message& message, const Style& style);
std::string to_json(const google::protobuf::Message& message, bool pretty);
std::string to_yaml(const google::protobuf::Message& message);
// A JSON document (object or array) as YAML.
std::string json_to_yaml(const std::string& json_text);

}  // namespace telekern::shell
