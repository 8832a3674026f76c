#include "shell/output.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "shell/display_width.h"
#include "shell/values.h"
#include "telekern/options/v1/options.pb.h"
#include "telekern/strings.h"

namespace telekern::shell {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

constexpr size_t kMaxCellWidth = 60;

std::string to_upper_copy(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}
constexpr int kProgressWidth = 30;
constexpr size_t kMaxBars = 12;  // more labelled bars collapse into a "... N more" line
constexpr size_t kMaxLabelWidth = 32;

bool is_leaf_message(const Descriptor* type) {
  return is_duration(type) || is_timestamp(type) ||
         type->file()->name() == "google/protobuf/wrappers.proto";
}

bool is_plain_field(const FieldDescriptor* field) {
  if (field->is_map()) return false;
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return true;
  return !field->is_repeated() && is_leaf_message(field->message_type());
}

using Column = std::vector<const FieldDescriptor*>;

// Leaf fields of a row type; nested messages flatten one level (health.state).
std::vector<Column> columns_of(const Descriptor* type) {
  std::vector<Column> columns;
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        !is_leaf_message(field->message_type())) {
      for (int j = 0; j < field->message_type()->field_count(); ++j) {
        columns.push_back({field, field->message_type()->field(j)});
      }
    } else {
      columns.push_back({field});
    }
  }
  return columns;
}

std::string column_name(const Column& column) {
  std::vector<std::string> parts;
  for (const auto* field : column) parts.push_back(field->name());
  return join(parts, ".");
}

std::string cell(const Message& row, const Column& column) {
  const Message* holder = &row;
  for (size_t i = 0; i + 1 < column.size(); ++i) {
    if (!holder->GetReflection()->HasField(*holder, column[i])) return "";
    holder = &holder->GetReflection()->GetMessage(*holder, column[i]);
  }
  const auto* field = column.back();
  if (field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    int size = holder->GetReflection()->FieldSize(*holder, field);
    return size == 0 ? "" : str_cat("[", size, "]");
  }
  return format_field(*holder, field);
}

std::string truncate(std::string text, const Style& style) {
  for (auto& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (style.tty && display_width(text) > kMaxCellWidth) {
    text = prefix_of_width(text, kMaxCellWidth - 3) + "...";
  }
  return text;
}

std::string table_of(const Message& message, const FieldDescriptor* field, const Style& style) {
  const auto* reflection = message.GetReflection();
  auto columns = columns_of(field->message_type());
  std::vector<std::vector<std::string>> rows;
  int size = reflection->FieldSize(message, field);
  for (int i = 0; i < size; ++i) {
    const Message& row = reflection->GetRepeatedMessage(message, field, i);
    std::vector<std::string> cells;
    for (const auto& column : columns) cells.push_back(truncate(cell(row, column), style));
    rows.push_back(std::move(cells));
  }
  // Columns empty in every row only take room.
  std::vector<std::string> header;
  std::vector<size_t> kept;
  for (size_t c = 0; c < columns.size(); ++c) {
    bool any = rows.empty();
    for (const auto& row : rows) any = any || !row[c].empty();
    if (any || (kept.empty() && c + 1 == columns.size())) {
      kept.push_back(c);
      header.push_back(column_name(columns[c]));
    }
  }
  std::vector<std::vector<std::string>> kept_rows;
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    for (size_t c : kept) cells.push_back(row[c]);
    kept_rows.push_back(std::move(cells));
  }
  return render_table(header, kept_rows, style);
}

std::string indent_lines(const std::string& text, size_t indent) {
  std::string out;
  std::string pad(indent, ' ');
  for (const auto& line : split(text, '\n', /*skip_empty=*/true)) out += pad + line + "\n";
  return out;
}

// A field marked hide_unset that holds its default value.
bool hidden(const Message& message, const FieldDescriptor* field) {
  if (!field->options().HasExtension(options::v1::field_cli) ||
      !field->options().GetExtension(options::v1::field_cli).hide_unset()) {
    return false;
  }
  const auto* reflection = message.GetReflection();
  return field->is_repeated() ? reflection->FieldSize(message, field) == 0
                              : !reflection->HasField(message, field);
}

void render_fields(const Message& message, const Style& style, size_t indent, bool top_level,
                   std::string& out) {
  const auto* type = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  // A response whose point is one list prints that list as a table first.
  const FieldDescriptor* list = nullptr;
  if (top_level) {
    for (int i = 0; i < type->field_count(); ++i) {
      const auto* field = type->field(i);
      if (hidden(message, field)) continue;
      if (field->is_repeated() && !field->is_map() &&
          field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (list != nullptr) {
          list = nullptr;
          break;
        }
        list = field;
      }
    }
    if (list != nullptr) {
      if (reflection->FieldSize(message, list) == 0) {
        out += style.dim(str_cat("(no ", list->name(), ")")) + "\n";
      } else {
        out += table_of(message, list, style);
      }
    }
  }
  // Keys align over the plain fields that print (not the table, not unset messages).
  size_t width = 0;
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (field == list || !is_plain_field(field) || hidden(message, field)) continue;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !reflection->HasField(message, field))
      continue;
    width = std::max(width, field->name().size());
  }
  std::string pad(indent, ' ');
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (field == list || hidden(message, field)) continue;
    std::string key = field->name() + ":";
    key.resize(width + 2, ' ');
    if (is_plain_field(field)) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
          !reflection->HasField(message, field))
        continue;
      out += pad + style.cyan(key) + format_field(message, field) + "\n";
    } else if (field->is_map() || field->is_repeated()) {
      int size = reflection->FieldSize(message, field);
      if (size == 0) continue;
      out += pad + style.cyan(field->name() + ":") + "\n";
      if (field->is_map()) {
        const auto* entry_type = field->message_type();
        for (int j = 0; j < size; ++j) {
          const Message& entry = reflection->GetRepeatedMessage(message, field, j);
          out += pad + "  " + format_field(entry, entry_type->FindFieldByName("key")) + ": " +
                 format_field(entry, entry_type->FindFieldByName("value")) + "\n";
        }
      } else {
        out += indent_lines(table_of(message, field, style), indent + 2);
      }
    } else {
      if (!reflection->HasField(message, field)) continue;
      out += pad + style.cyan(field->name() + ":") + "\n";
      render_fields(reflection->GetMessage(message, field), style, indent + 2, false, out);
    }
  }
}

// A stream row prints on one line when the message has only plain fields.
bool is_flat(const Descriptor* type) {
  for (int i = 0; i < type->field_count(); ++i) {
    if (!is_plain_field(type->field(i))) return false;
  }
  return type->field_count() > 0;
}

const FieldDescriptor* numeric_field(const Descriptor* type, const char* name) {
  const auto* field = type->FindFieldByName(name);
  if (field == nullptr || field->is_repeated()) return nullptr;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return field;
    default:
      return nullptr;
  }
}

// 1234567 as "1234567", 12.5 as "12.5".
std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.15g", value);
  return text;
}

// A message type a progress bar is drawn from: a label and numeric done/total.
bool is_bar_type(const Descriptor* type) {
  const auto* label = type->FindFieldByName("label");
  return label != nullptr && !label->is_repeated() &&
         label->cpp_type() == FieldDescriptor::CPPTYPE_STRING && numeric_field(type, "done") &&
         numeric_field(type, "total");
}

bool is_bar_list(const FieldDescriptor* field) {
  return field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         !field->is_map() && is_bar_type(field->message_type());
}

// A response type with labelled bars: a repeated bar field of its own or of
// one of its message fields (e.g. TraceDeviceResponse.progress.topics).
bool has_bar_field(const Descriptor* type) {
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (is_bar_list(field)) return true;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated()) {
      const auto* inner = field->message_type();
      for (int j = 0; j < inner->field_count(); ++j)
        if (is_bar_list(inner->field(j))) return true;
    }
  }
  return false;
}

// The repeated bar field of `response` that is set, and the message holding it.
const FieldDescriptor* bar_field_of(const Message& response, const Message** holder) {
  const auto* type = response.GetDescriptor();
  const auto* reflection = response.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const auto* field = type->field(i);
    if (is_bar_list(field) && reflection->FieldSize(response, field) > 0) {
      *holder = &response;
      return field;
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
        reflection->HasField(response, field)) {
      const Message& inner = reflection->GetMessage(response, field);
      const auto* inner_type = inner.GetDescriptor();
      for (int j = 0; j < inner_type->field_count(); ++j) {
        const auto* candidate = inner_type->field(j);
        if (is_bar_list(candidate) && inner.GetReflection()->FieldSize(inner, candidate) > 0) {
          *holder = &inner;
          return candidate;
        }
      }
    }
  }
  return nullptr;
}

YAML::Node to_yaml_node(const nlohmann::json& json) {
  YAML::Node node;
  if (json.is_object()) {
    node = YAML::Node(YAML::NodeType::Map);
    for (const auto& [key, value] : json.items()) node[key] = to_yaml_node(value);
  } else if (json.is_array()) {
    node = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& value : json) node.push_back(to_yaml_node(value));
  } else if (json.is_string()) {
    node = json.get<std::string>();
  } else if (json.is_null()) {
    node = YAML::Node(YAML::NodeType::Null);
  } else {
    node = json.dump();
  }
  return node;
}

}  // namespace

bool parse_output_format(const std::string& text, OutputFormat* format) {
  if (text == "table" || text == "text") {
    *format = OutputFormat::kTable;
  } else if (text == "json") {
    *format = OutputFormat::kJson;
  } else if (text == "yaml") {
    *format = OutputFormat::kYaml;
  } else {
    return false;
  }
  return true;
}

std::string Style::bold(const std::string& text) const {
  return color ? "\033[1m" + text + "\033[0m" : text;
}
std::string Style::dim(const std::string& text) const {
  return color ? "\033[2m" + text + "\033[0m" : text;
}
std::string Style::red(const std::string& text) const {
  return color ? "\033[31m" + text + "\033[0m" : text;
}
std::string Style::cyan(const std::string& text) const {
  return color ? "\033[36m" + text + "\033[0m" : text;
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows, const Style& style) {
  std::vector<size_t> widths(header.size(), 0);
  // Display columns, not bytes: "Zürich" is 6 wide in 7 bytes, "東京" 4 in 6.
  for (size_t c = 0; c < header.size(); ++c) widths[c] = display_width(header[c]);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c)
      widths[c] = std::max(widths[c], display_width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool is_header) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string text = is_header ? to_upper_copy(cells[c]) : cells[c];
      if (c + 1 < cells.size()) text = pad_to_width(std::move(text), widths[c]);
      out += is_header ? style.bold(text) : text;
      if (c + 1 < cells.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header, true);
  for (const auto& row : rows) out += line(row, false);
  return out;
}

std::string render_message(const Message& message, const Style& style) {
  std::string out;
  render_fields(message, style, 0, true, out);
  return out;
}

std::string to_json(const Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = pretty;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return str_cat("{\"error\":\"", std::string(status.message()), "\"}");
  if (!json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

std::string json_to_yaml(const std::string& json_text) {
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  YAML::Emitter emitter;
  emitter << to_yaml_node(json);
  return emitter.c_str();
}

std::string to_yaml(const Message& message) {
  auto json = nlohmann::json::parse(to_json(message, false), nullptr, false);
  YAML::Emitter emitter;
  emitter << to_yaml_node(json);
  return emitter.c_str();
}

ResponsePrinter::ResponsePrinter(std::ostream& out, OutputFormat format, Style style,
                                 bool streaming)
    : out_(out), format_(format), style_(style), streaming_(streaming) {}

void ResponsePrinter::print(const Message& response) {
  ++count_;
  switch (format_) {
    case OutputFormat::kJson:
      out_ << to_json(response, !streaming_ && style_.tty) << "\n" << std::flush;
      return;
    case OutputFormat::kYaml:
      if (streaming_ && count_ > 1) out_ << "---\n";
      out_ << to_yaml(response) << "\n" << std::flush;
      return;
    case OutputFormat::kTable:
      break;
  }
  if (!streaming_) {
    std::string text = render_message(response, style_);
    out_ << (text.empty() ? style_.dim("ok") + "\n" : text) << std::flush;
    return;
  }
  const auto* type = response.GetDescriptor();
  if (count_ == 1) {
    progress_ = style_.tty && ((numeric_field(type, "done") && numeric_field(type, "total")) ||
                               has_bar_field(type));
  }
  bool has_bars = collect_bars(response);
  if (progress_) {
    if (!last_) last_.reset(response.New());
    last_->CopyFrom(response);
    draw_progress(response);
    return;
  }
  if (has_bars) {
    // Not a terminal: a line per bar that moved, every line_interval_.
    auto now = std::chrono::steady_clock::now();
    bool newly_finished = std::any_of(bars_.begin(), bars_.end(),
                                      [](const Bar& bar) { return bar.finished && !bar.printed; });
    if (last_lines_ == std::chrono::steady_clock::time_point{} ||
        now - last_lines_ >= line_interval_) {
      print_bar_lines(true);
      last_lines_ = now;
    } else if (newly_finished) {
      print_bar_lines(false);
    }
    return;
  }
  if (is_flat(type)) {
    print_stream_row(response);
  } else {
    if (count_ > 1) out_ << "\n";
    out_ << render_message(response, style_) << std::flush;
  }
}

void ResponsePrinter::print_stream_row(const Message& response) {
  const auto* type = response.GetDescriptor();
  std::vector<std::string> cells;
  for (int i = 0; i < type->field_count(); ++i)
    cells.push_back(truncate(format_field(response, type->field(i)), style_));
  if (count_ == 1) {
    std::vector<std::string> header;
    for (int i = 0; i < type->field_count(); ++i) {
      header.push_back(type->field(i)->name());
      stream_widths_.push_back(
          std::max<size_t>({type->field(i)->name().size(), display_width(cells[i]), 6}));
    }
    // Pad header cells to the stream widths (later rows may be wider than the first).
    std::string line;
    for (size_t c = 0; c < header.size(); ++c) {
      std::string name = to_upper_copy(header[c]);
      if (c + 1 < header.size()) name.resize(stream_widths_[c], ' ');
      line += style_.bold(name) + (c + 1 < header.size() ? "  " : "");
    }
    out_ << line << "\n";
  }
  std::string line;
  for (size_t c = 0; c < cells.size(); ++c) {
    std::string text = cells[c];
    if (c + 1 < cells.size() && c < stream_widths_.size()) {
      text = pad_to_width(std::move(text), stream_widths_[c]);
    }
    line += text + (c + 1 < cells.size() ? "  " : "");
  }
  out_ << line << "\n" << std::flush;
}

bool ResponsePrinter::collect_bars(const Message& response) {
  std::vector<const Message*> entries;
  const Message* holder = nullptr;
  const FieldDescriptor* field = bar_field_of(response, &holder);
  if (field == nullptr) return false;
  const auto* reflection = holder->GetReflection();
  int size = reflection->FieldSize(*holder, field);
  if (size == 0) return false;
  const auto* type = field->message_type();
  const auto* label = type->FindFieldByName("label");
  for (int i = 0; i < size; ++i) {
    const Message& entry = reflection->GetRepeatedMessage(*holder, field, i);
    std::string name = format_field(entry, label);
    auto it =
        std::find_if(bars_.begin(), bars_.end(), [&](const Bar& bar) { return bar.label == name; });
    if (it == bars_.end()) {
      bars_.push_back(Bar{.label = name});
      it = bars_.end() - 1;
    }
    Bar next = *it;
    next.done = std::stod(format_field(entry, numeric_field(type, "done")));
    next.total = std::stod(format_field(entry, numeric_field(type, "total")));
    if (const auto* unit = type->FindFieldByName("unit")) next.unit = format_field(entry, unit);
    if (const auto* detail = type->FindFieldByName("detail"))
      next.detail = format_field(entry, detail);
    if (const auto* finished = type->FindFieldByName("finished");
        finished != nullptr && finished->cpp_type() == FieldDescriptor::CPPTYPE_BOOL)
      next.finished = entry.GetReflection()->GetBool(entry, finished);
    next.printed = it->printed && next.done == it->done && next.total == it->total &&
                   next.finished == it->finished && next.detail == it->detail;
    *it = std::move(next);
  }
  return true;
}

std::string render_bar(const ResponsePrinter::Bar& bar, size_t label_width, const Style& style) {
  std::string text = pad_to_width(prefix_of_width(bar.label, label_width), label_width);
  std::string counts;
  std::string bar_text;
  if (bar.total > 0) {
    double fraction = std::clamp(bar.done / bar.total, 0.0, 1.0);
    int filled = static_cast<int>(fraction * kProgressWidth);
    bar_text = std::string(filled, '#') + std::string(kProgressWidth - filled, '.');
    char percent[16];
    std::snprintf(percent, sizeof percent, "%3d%%", static_cast<int>(fraction * 100));
    counts = str_cat(format_number(bar.done), "/", format_number(bar.total),
                     bar.unit.empty() ? "" : " " + bar.unit, "  ", percent);
  } else {
    // Total unknown: a full bar once finished, an empty one while running.
    bar_text = std::string(kProgressWidth, bar.finished ? '#' : '.');
    counts = str_cat(format_number(bar.done), bar.unit.empty() ? "" : " " + bar.unit);
  }
  std::string rest =
      str_cat(counts, bar.finished ? "  done" : "", bar.detail.empty() ? "" : "  " + bar.detail);
  if (style.columns > 0) {
    size_t used = label_width + kProgressWidth + 4;
    rest = style.columns > used + 1 ? prefix_of_width(rest, style.columns - used - 1) : "";
  }
  return str_cat(text, " [", style.cyan(bar_text), "] ", rest);
}

void ResponsePrinter::print_bar_lines(bool all_changed) {
  size_t label_width = 0;
  for (const auto& bar : bars_) label_width = std::max(label_width, display_width(bar.label));
  label_width = std::min(label_width, kMaxLabelWidth);
  for (auto& bar : bars_) {
    if (bar.printed || (!all_changed && !bar.finished)) continue;
    out_ << render_bar(bar, label_width, Style{}) << "\n";
    bar.printed = true;
  }
  out_ << std::flush;
}

void ResponsePrinter::clear_drawn() {
  if (drawn_lines_ > 1) out_ << "\033[" << drawn_lines_ - 1 << "A";
  out_ << "\r\033[J";
  drawn_lines_ = 0;
}

void ResponsePrinter::draw_progress(const Message& response) {
  std::vector<std::string> lines;
  // Running bars first, then finished ones, at most kMaxBars.
  std::vector<const Bar*> shown;
  for (const auto& bar : bars_)
    if (!bar.finished) shown.push_back(&bar);
  for (const auto& bar : bars_)
    if (bar.finished) shown.push_back(&bar);
  size_t label_width = 0;
  for (const auto* bar : shown) label_width = std::max(label_width, display_width(bar->label));
  label_width = std::min(label_width, kMaxLabelWidth);
  for (size_t i = 0; i < shown.size() && i < kMaxBars; ++i)
    lines.push_back(render_bar(*shown[i], label_width, style_));
  if (shown.size() > kMaxBars) {
    size_t finished =
        std::count_if(bars_.begin(), bars_.end(), [](const Bar& b) { return b.finished; });
    lines.push_back(style_.dim(str_cat("... ", shown.size() - kMaxBars, " more (", finished, " of ",
                                       bars_.size(), " finished)")));
  }
  const auto* type = response.GetDescriptor();
  const auto* done_field = numeric_field(type, "done");
  const auto* total_field = numeric_field(type, "total");
  if (done_field != nullptr && total_field != nullptr) {
    Bar overall{.label = bars_.empty() ? "" : "total"};
    overall.done = std::stod(format_field(response, done_field));
    overall.total = std::stod(format_field(response, total_field));
    if (bars_.empty()) {
      // The single bar of a stream without labelled bars: "[####....] 3/8 37%".
      std::string text = render_bar(overall, 0, style_);
      lines.push_back(text.substr(text.find('[')));
    } else {
      lines.push_back(render_bar(overall, label_width, style_));
    }
  }
  clear_drawn();
  for (size_t i = 0; i < lines.size(); ++i) out_ << (i > 0 ? "\n" : "") << lines[i];
  drawn_lines_ = lines.size();
  out_ << std::flush;
}

void ResponsePrinter::finish() {
  if (progress_ && last_) {
    clear_drawn();
    out_ << render_message(*last_, style_) << std::flush;
  }
  progress_ = false;
}

}  // namespace telekern::shell
