#include "telekern/report/html_report.h"

#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_replace.h>
#include <absl/time/clock.h>
#include <absl/time/time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>

namespace telekern::report {
namespace {

constexpr const char* kDebianPlotly = "/usr/share/python3-plotly/plotly.js";

constexpr const char* kStyle = R"css(
:root { color-scheme: light dark; --fg: #1d2330; --bg: #ffffff; --muted: #5b6475;
        --line: #d8dde6; --panel: #f5f7fa; --accent: #2a6fdb; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e8ef; --bg: #14171c; --muted: #9aa3b2; --line: #2e3440;
          --panel: #1c2027; --accent: #6ea2ff; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg);
       margin: 0 auto; max-width: 1200px; padding: 1.5rem; }
h1 { margin: 0 0 .2rem; font-size: 1.6rem; }
h2 { margin: 2rem 0 .6rem; font-size: 1.2rem; border-bottom: 1px solid var(--line); }
h3 { margin: 1.2rem 0 .4rem; font-size: 1rem; }
.subtitle, .generated { color: var(--muted); margin: 0; }
.notice { border: 1px solid #c9a227; background: rgba(201,162,39,.12); padding: .6rem .8rem;
          border-radius: 6px; margin: 1rem 0; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--panel); }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: .2rem 1.2rem;
        background: var(--panel); padding: .8rem 1rem; border-radius: 6px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; }
.chart { min-height: 380px; border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0 1rem; }
a.attachment { display: inline-block; margin: .2rem 1rem .2rem 0; color: var(--accent); }
h3.expandable { cursor: zoom-in; } h3.expandable::after { content: "  \2922 expand"; color: var(--muted); font-weight: normal; font-size: .85em; }
.chart.expanded { position: fixed; inset: 3vh 3vw; z-index: 10; background: var(--bg); box-shadow: 0 0 0 100vmax rgba(0,0,0,.55); }
.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center;
           background: var(--panel); padding: .5rem .8rem; border-radius: 6px; margin: .4rem 0; }
.filters input, .filters select { font: inherit; padding: .1rem .3rem; }
.filters input[type=search] { min-width: 16rem; }
.filters .count { color: var(--muted); margin-left: auto; }
)css";

// Filters the rows of every table.filterable from the controls beside it.
constexpr const char* kFilterScript = R"js(
(function () {
  function less(a, b) {
    var x = Number(a), y = Number(b);
    if (a.trim() !== '' && b.trim() !== '' && !isNaN(x) && !isNaN(y)) return x < y;
    return a < b;
  }
  function keep(cell, kind, value) {
    if (kind === 'choice') return cell === value;
    if (kind === 'text') return cell.toLowerCase().indexOf(value.toLowerCase()) >= 0;
    if (kind === 'from') return !less(cell, value);
    if (kind === 'to') return !less(value, cell) || cell.indexOf(value) === 0;
    return true;
  }
  document.querySelectorAll('table.filterable').forEach(function (table) {
    var id = table.id;
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (row) {
      return Array.prototype.map.call(row.cells, function (cell) {
        return cell.textContent.toLowerCase();
      }).join('\n');
    });
    var search = document.getElementById(id + '-search');
    var count = document.getElementById(id + '-count');
    var controls = Array.prototype.slice.call(
      document.querySelectorAll('[data-table="' + id + '"][data-column]'));
    function apply() {
      var needle = search.value.trim().toLowerCase();
      var active = controls.filter(function (control) { return control.value.trim() !== ''; });
      var shown = 0;
      rows.forEach(function (row, index) {
        var visible = needle === '' || texts[index].indexOf(needle) >= 0;
        for (var i = 0; visible && i < active.length; ++i) {
          var cell = row.cells[Number(active[i].dataset.column)];
          visible = keep(cell ? cell.textContent : '', active[i].dataset.kind, active[i].value.trim());
        }
        row.hidden = !visible;
        if (visible) ++shown;
      });
      count.textContent = shown + ' of ' + rows.length + ' rows';
    }
    search.addEventListener('input', apply);
    controls.forEach(function (control) {
      control.addEventListener(control.tagName === 'SELECT' ? 'change' : 'input', apply);
    });
    document.getElementById(id + '-clear').addEventListener('click', function () {
      search.value = '';
      controls.forEach(function (control) { control.value = ''; });
      apply();
    });
    apply();
  });
})();
)js";

// Renders every `.chart` element from the JSON block beside it.
constexpr const char* kChartScript = R"js(
(function () {
  var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.querySelectorAll('.chart').forEach(function (div) {
    var figure = JSON.parse(document.getElementById(div.id + '-data').textContent);
    var layout = Object.assign({ margin: { t: 30, r: 20, b: 50, l: 60 } }, figure.layout || {});
    if (dark) {
      layout.paper_bgcolor = layout.paper_bgcolor || '#14171c';
      layout.plot_bgcolor = layout.plot_bgcolor || '#1c2027';
      layout.font = Object.assign({ color: '#e4e8ef' }, layout.font || {});
    }
    Plotly.newPlot(div, figure.data || [], layout, { responsive: true, displaylogo: false });
    // Click a chart's heading to expand it over the page; Escape or another click closes it.
    var heading = div.previousElementSibling;
    if (heading && heading.tagName === 'H3') {
      heading.classList.add('expandable');
      heading.title = 'Click to expand (Escape closes)';
      heading.addEventListener('click', function () {
        div.classList.toggle('expanded');
        Plotly.Plots.resize(div);
      });
    }
  });
  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape') return;
    document.querySelectorAll('.chart.expanded').forEach(function (div) {
      div.classList.remove('expanded');
      Plotly.Plots.resize(div);
    });
  });
})();
)js";

// Text placed inside <script> must not close it early.
std::string script_safe(std::string_view text) {
  return absl::StrReplaceAll(absl::string_view(text.data(), text.size()), {{"</", "<\\/"}});
}

// JSON placed inside <script>: "<" only occurs in strings, where \u003c means
// the same, so no tag can open or close in the data.
std::string script_json(const nlohmann::json& value) {
  return absl::StrReplaceAll(value.dump(), {{"<", "\\u003c"}});
}

void append_rows(std::string& html, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const std::string& attributes);

// The controls (filter box, one per filtered column, clear, count), then the table.
void render_filterable_table(std::string& html, const std::vector<std::string>& header,
                             const std::vector<std::vector<std::string>>& rows,
                             const TableFilters& filters, const std::string& id);

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string csv_field(std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(field);
  return absl::StrCat(
      "\"", absl::StrReplaceAll(absl::string_view(field.data(), field.size()), {{"\"", "\"\""}}),
      "\"");
}

absl::StatusOr<std::string> load_plotly_js(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("plotly.js not found at ", path.string(),
                     " (install Debian's python3-plotly or set TELEKERN_PLOTLY_JS)"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return script_safe(text.str());
}

absl::StatusOr<std::string> plotly_js() {
  static std::once_flag once;
  static absl::StatusOr<std::string> source;
  std::call_once(once, [] {
    const char* configured = std::getenv("TELEKERN_PLOTLY_JS");
    source = load_plotly_js(configured != nullptr && *configured != '\0'
                                ? std::filesystem::path(configured)
                                : std::filesystem::path(kDebianPlotly));
  });
  return source;
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

HtmlReport& HtmlReport::subtitle(std::string text) {
  subtitle_ = std::move(text);
  return *this;
}

HtmlReport& HtmlReport::heading(std::string text) {
  blocks_.push_back({.kind = Block::Kind::kHeading, .text = std::move(text)});
  return *this;
}

HtmlReport& HtmlReport::paragraph(std::string text) {
  blocks_.push_back({.kind = Block::Kind::kParagraph, .text = std::move(text)});
  return *this;
}

HtmlReport& HtmlReport::key_values(std::vector<std::pair<std::string, std::string>> rows) {
  Block block{.kind = Block::Kind::kKeyValues};
  for (auto& [key, value] : rows) block.rows.push_back({std::move(key), std::move(value)});
  blocks_.push_back(std::move(block));
  return *this;
}

HtmlReport& HtmlReport::table(std::vector<std::string> header,
                              std::vector<std::vector<std::string>> rows) {
  blocks_.push_back(
      {.kind = Block::Kind::kTable, .header = std::move(header), .rows = std::move(rows)});
  return *this;
}

HtmlReport& HtmlReport::filterable_table(std::vector<std::string> header,
                                         std::vector<std::vector<std::string>> rows,
                                         TableFilters filters) {
  blocks_.push_back({.kind = Block::Kind::kFilterableTable,
                     .header = std::move(header),
                     .rows = std::move(rows),
                     .filters = std::move(filters)});
  return *this;
}

HtmlReport& HtmlReport::chart(std::string title, nlohmann::json figure) {
  blocks_.push_back(
      {.kind = Block::Kind::kChart, .text = std::move(title), .figure = std::move(figure)});
  return *this;
}

HtmlReport& HtmlReport::attachment(std::string file_name, std::string mime, std::string content) {
  blocks_.push_back({.kind = Block::Kind::kAttachment,
                     .text = std::move(file_name),
                     .mime = std::move(mime),
                     .content = std::move(content)});
  return *this;
}

std::string HtmlReport::render() const {
  bool has_charts = false;
  for (const auto& block : blocks_) has_charts |= block.kind == Block::Kind::kChart;
  return render(has_charts ? plotly_js() : absl::StatusOr<std::string>(std::string()));
}

std::string HtmlReport::render(const absl::StatusOr<std::string>& plotly) const {
  bool has_charts = false;
  for (const auto& block : blocks_) has_charts |= block.kind == Block::Kind::kChart;

  std::string html;
  absl::StrAppend(&html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
                  "<meta name=\"generator\" content=\"telekern\">\n<title>", html_escape(title_),
                  "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n<header>\n<h1>",
                  html_escape(title_), "</h1>\n");
  if (!subtitle_.empty())
    absl::StrAppend(&html, "<p class=\"subtitle\">", html_escape(subtitle_), "</p>\n");
  absl::StrAppend(&html, "<p class=\"generated\">Generated ",
                  absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::Now(), absl::UTCTimeZone()),
                  "</p>\n</header>\n");
  if (has_charts && !plotly.ok()) {
    absl::StrAppend(&html, "<p class=\"notice\">Charts are not drawn: ",
                    html_escape(std::string(plotly.status().message())),
                    ". Their data is kept in this page and in the attachments.</p>\n");
  }

  int chart_index = 0;
  int table_index = 0;
  bool has_filterable = false;
  for (const auto& block : blocks_) {
    switch (block.kind) {
      case Block::Kind::kHeading:
        absl::StrAppend(&html, "<h2>", html_escape(block.text), "</h2>\n");
        break;
      case Block::Kind::kParagraph:
        absl::StrAppend(&html, "<p>", html_escape(block.text), "</p>\n");
        break;
      case Block::Kind::kKeyValues:
        absl::StrAppend(&html, "<dl class=\"kv\">\n");
        for (const auto& row : block.rows) {
          absl::StrAppend(&html, "<dt>", html_escape(row[0]), "</dt><dd>", html_escape(row[1]),
                          "</dd>\n");
        }
        absl::StrAppend(&html, "</dl>\n");
        break;
      case Block::Kind::kTable:
        append_rows(html, block.header, block.rows, "");
        break;
      case Block::Kind::kFilterableTable:
        has_filterable = true;
        render_filterable_table(
            html, block.header, block.rows, block.filters,
            block.filters.id.empty() ? absl::StrCat("table-", ++table_index) : block.filters.id);
        break;
      case Block::Kind::kChart: {
        std::string id = absl::StrCat("chart-", ++chart_index);
        absl::StrAppend(&html, "<h3>", html_escape(block.text), "</h3>\n<div class=\"chart\" id=\"",
                        id, "\" role=\"img\" aria-label=\"", html_escape(block.text),
                        "\"></div>\n<script type=\"application/json\" id=\"", id, "-data\">",
                        script_json(block.figure), "</script>\n");
        break;
      }
      case Block::Kind::kAttachment:
        absl::StrAppend(&html, "<a class=\"attachment\" download=\"", html_escape(block.text),
                        "\" href=\"data:", html_escape(block.mime), ";base64,",
                        absl::Base64Escape(block.content), "\">", html_escape(block.text),
                        "</a>\n");
        break;
    }
  }

  if (has_filterable) absl::StrAppend(&html, "<script>", kFilterScript, "</script>\n");
  if (has_charts && plotly.ok()) {
    absl::StrAppend(&html, "<script>", *plotly, "</script>\n<script>", kChartScript, "</script>\n");
  }
  absl::StrAppend(&html, "</body>\n</html>\n");
  return html;
}

namespace {

void append_rows(std::string& html, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, const std::string& attributes) {
  absl::StrAppend(&html, "<table", attributes, ">\n<thead><tr>");
  for (const auto& cell : header) absl::StrAppend(&html, "<th>", html_escape(cell), "</th>");
  absl::StrAppend(&html, "</tr></thead>\n<tbody>\n");
  for (const auto& row : rows) {
    absl::StrAppend(&html, "<tr>");
    for (const auto& cell : row) absl::StrAppend(&html, "<td>", html_escape(cell), "</td>");
    absl::StrAppend(&html, "</tr>\n");
  }
  absl::StrAppend(&html, "</tbody>\n</table>\n");
}

void render_filterable_table(std::string& html, const std::vector<std::string>& header,
                             const std::vector<std::vector<std::string>>& rows,
                             const TableFilters& filters, const std::string& id) {
  std::string table_id = html_escape(id);
  absl::StrAppend(
      &html, "<div class=\"filters\" id=\"", table_id, "-filters\">\n<input type=\"search\" id=\"",
      table_id, "-search\" placeholder=\"Filter rows (any column)\" aria-label=\"Filter rows\">\n");
  for (size_t column = 0; column < filters.columns.size() && column < header.size(); ++column) {
    std::string name = html_escape(header[column]);
    std::string common =
        absl::StrCat(" data-table=\"", table_id, "\" data-column=\"", column, "\"");
    switch (filters.columns[column]) {
      case ColumnFilter::kNone:
        break;
      case ColumnFilter::kText:
        absl::StrAppend(&html, "<label>", name, " <input type=\"text\" size=\"12\"", common,
                        " data-kind=\"text\" aria-label=\"", name, "\"></label>\n");
        break;
      case ColumnFilter::kChoice: {
        std::set<std::string> values;
        for (const auto& row : rows)
          if (column < row.size()) values.insert(row[column]);
        std::vector<std::string> sorted(values.begin(), values.end());
        // Numbers in numeric order (partitions 2 before 10), the rest as text.
        std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
          bool a_number = !a.empty() && a.find_first_not_of("0123456789") == std::string::npos;
          bool b_number = !b.empty() && b.find_first_not_of("0123456789") == std::string::npos;
          if (a_number && b_number) return a.size() != b.size() ? a.size() < b.size() : a < b;
          return a_number && !b_number;
        });
        absl::StrAppend(&html, "<label>", name, " <select", common,
                        " data-kind=\"choice\" aria-label=\"", name,
                        "\"><option value=\"\">all</option>");
        for (const auto& value : sorted)
          absl::StrAppend(&html, "<option value=\"", html_escape(value), "\">", html_escape(value),
                          "</option>");
        absl::StrAppend(&html, "</select></label>\n");
        break;
      }
      case ColumnFilter::kRange:
        absl::StrAppend(&html, "<label>", name, " from <input type=\"text\" size=\"14\"", common,
                        " data-kind=\"from\" aria-label=\"", name,
                        " from\"></label>\n<label>to <input ", "type=\"text\" size=\"14\"", common,
                        " data-kind=\"to\" aria-label=\"", name, " to\"></label>\n");
        break;
    }
  }
  absl::StrAppend(&html, "<button type=\"button\" id=\"", table_id,
                  "-clear\">Clear filters</button>\n<span class=\"count\" id=\"", table_id,
                  "-count\" aria-live=\"polite\">", rows.size(), " of ", rows.size(),
                  " rows</span>\n</div>\n");
  append_rows(html, header, rows, absl::StrCat(" class=\"filterable\" id=\"", table_id, "\""));
}

}  // namespace

absl::Status HtmlReport::write(const std::filesystem::path& file) const {
  std::error_code error;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create ", file.parent_path().string(), ": ", error.message()));
  }
  std::filesystem::path temporary = file;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << render();
    out.flush();
    if (!out) {
      std::filesystem::remove(temporary, error);
      return absl::InternalError(absl::StrCat("cannot write ", temporary.string()));
    }
  }
  std::filesystem::rename(temporary, file, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    return absl::InternalError(absl::StrCat("cannot rename ", temporary.string(), " to ",
                                            file.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace telekern::report
