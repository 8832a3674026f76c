// One self-contained HTML report: inline CSS, plotly.js embedded, data
// exports attached, so the file can be archived, mailed and opened offline.
// Shared by the modules that write reports (tracer, bench).
//
//   telekern::report::HtmlReport report("Trace of gpu-7");
//   report.key_values({{"events", "1204"}, {"topics", "3"}})
//       .chart("Events per minute", figure)  // a Plotly figure {"data": [...], "layout": {...}}
//       .attachment("events.csv", "text/csv", csv);
//   report.filterable_table({"time", "topic", "value"}, rows,
//                           {.id = "events", .columns = {ColumnFilter::kRange,
//                                                        ColumnFilter::kChoice}});
//   absl::Status written = report.write(dir / "report.html");
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace telekern::report {

// How the reader filters one column of a filterable table in the page.
enum class ColumnFilter {
  kNone,
  kText,    // a box: cells containing the text (case-insensitive)
  kChoice,  // a drop-down of the column's distinct values
  kRange,   // from/to boxes: numbers compare as numbers, other text (ISO times)
            // as text, and "to" also keeps cells it is a prefix of (to 2026-05-01
            // keeps that whole day)
};

struct TableFilters {
  std::string id;                     // element id prefix, e.g. "events"; "" = table-<n>
  std::vector<ColumnFilter> columns;  // by column index; columns not listed: kNone
};

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  HtmlReport& subtitle(std::string text);
  HtmlReport& heading(std::string text);
  HtmlReport& paragraph(std::string text);
  HtmlReport& key_values(std::vector<std::pair<std::string, std::string>> rows);
  HtmlReport& table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows);
  // A table with a filter box over every cell, the column filters asked for
  // and a count of the rows shown; the filtering runs in the page (no network).
  HtmlReport& filterable_table(std::vector<std::string> header,
                               std::vector<std::vector<std::string>> rows, TableFilters filters);
  // `figure` is a Plotly figure: {"data": [traces...], "layout": {...}}.
  HtmlReport& chart(std::string title, nlohmann::json figure);
  // A download link inside the page carrying `content` (JSON/CSV exports).
  HtmlReport& attachment(std::string file_name, std::string mime, std::string content);

  // The whole document. Embeds plotly.js when the report has charts and
  // plotly_js() finds it; otherwise the page says what is missing and still
  // shows everything else (the chart data stays in the page).
  std::string render() const;
  // The same with a given plotly.js source (or the reason it is missing).
  std::string render(const absl::StatusOr<std::string>& plotly_source) const;
  // Writes render() atomically (temporary file in the same directory, then
  // rename), creating the directory when needed.
  absl::Status write(const std::filesystem::path& file) const;

 private:
  struct Block {
    enum class Kind {
      kHeading,
      kParagraph,
      kKeyValues,
      kTable,
      kChart,
      kAttachment,
      kFilterableTable
    } kind;
    std::string text;                            // heading, paragraph, chart title, file name
    std::string mime;                            // attachment
    std::string content;                         // attachment
    std::vector<std::string> header;             // table
    std::vector<std::vector<std::string>> rows;  // table, key_values
    nlohmann::json figure;                       // chart
    TableFilters filters;                        // filterable table
  };

  std::string title_;
  std::string subtitle_;
  std::vector<Block> blocks_;
};

// The plotly.js source embedded in reports: $TELEKERN_PLOTLY_JS when set,
// else /usr/share/python3-plotly/plotly.js (Debian's python3-plotly). Read
// once per process.
absl::StatusOr<std::string> plotly_js();
// Reads a plotly.js source from `path`, prepared for embedding (uncached).
absl::StatusOr<std::string> load_plotly_js(const std::filesystem::path& path);

// `text` escaped for HTML element content and attribute values.
std::string html_escape(std::string_view text);
// One CSV field, quoted per RFC 4180 when it holds a comma, quote or newline.
std::string csv_field(std::string_view field);

}  // namespace telekern::report
