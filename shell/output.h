// Prints responses: tables for lists, key/value for single messages, one JSON
// (or YAML) document per response for scripts, progress bars for streams
// whose messages carry done/total and/or labelled bars (a repeated field of
// telekern.common.v1.ProgressBar or any message with label, done and total).
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

namespace telekern::shell {

enum class OutputFormat { kTable, kJson, kYaml };

bool parse_output_format(const std::string& text, OutputFormat* format);

struct Style {
  bool color = false;  // ANSI colors (TTY and no NO_COLOR)
  bool tty = false;    // stdout is a terminal: progress bars, cell truncation
  size_t columns = 0;  // terminal width (0 unknown): progress lines are cut to it

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
  // Not on a terminal, labelled bars print as lines at most this often
  // (besides a bar's last state, printed when it finishes).
  void set_line_interval(std::chrono::milliseconds interval) { line_interval_ = interval; }

  // One labelled bar as the stream last reported it.
  struct Bar {
    std::string label;
    double done = 0;
    double total = 0;
    std::string unit;
    bool finished = false;
    std::string detail;
    bool printed = false;  // the line form shows the current state
  };

 private:
  void print_stream_row(const google::protobuf::Message& response);
  // Reads the labelled bars a response carries into bars_; false when it has none.
  bool collect_bars(const google::protobuf::Message& response);
  void draw_progress(const google::protobuf::Message& response);
  void print_bar_lines(bool all_changed);
  void clear_drawn();

  std::ostream& out_;
  OutputFormat format_;
  Style style_;
  bool streaming_;
  size_t count_ = 0;
  bool progress_ = false;  // drawing a bar instead of printing each message
  std::unique_ptr<google::protobuf::Message> last_;
  std::vector<size_t> stream_widths_;
  std::vector<Bar> bars_;
  size_t drawn_lines_ = 0;  // lines of the progress block on screen
  std::chrono::milliseconds line_interval_{std::chrono::seconds(2)};
  std::chrono::steady_clock::time_point last_lines_{};
};

// One progress line: "label [####......] 120/400 records  30%  detail".
std::string render_bar(const ResponsePrinter::Bar& bar, size_t label_width, const Style& style);

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
