#include "row_binary.h"

#include <arpa/inet.h>
#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include "telekern/strings.h"

namespace telekern::etl {
namespace {

using Kind = BinaryType::Kind;

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// "Name(inner)" -> inner, when `type` is that wrapper.
bool unwrap(std::string_view& type, std::string_view name) {
  if (type.size() > name.size() + 1 && type.substr(0, name.size()) == name &&
      type[name.size()] == '(' && type.back() == ')') {
    type = trim(type.substr(name.size() + 1, type.size() - name.size() - 2));
    return true;
  }
  return false;
}

// The numbers inside "Name(a, b)".
std::vector<int> arguments(std::string_view type) {
  std::vector<int> out;
  size_t open = type.find('(');
  if (open == std::string_view::npos) return out;
  size_t at = open + 1;
  while (at < type.size()) {
    while (at < type.size() && (type[at] == ' ' || type[at] == ',')) ++at;
    int value = 0;
    auto [end, error] = std::from_chars(type.data() + at, type.data() + type.size(), value);
    if (error != std::errc()) break;
    out.push_back(value);
    at = static_cast<size_t>(end - type.data());
  }
  return out;
}

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

template <typename T>
void put_little(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86/ARM Linux: little-endian, as RowBinary
  out.append(bytes, sizeof(T));
}

// The low `bytes` bytes of `value`, little-endian (x86/ARM Linux: its memory order).
void put_integer(std::string& out, int bytes, unsigned __int128 value) {
  char buffer[sizeof value];
  std::memcpy(buffer, &value, sizeof value);
  out.append(buffer, static_cast<size_t>(bytes));
}

// Reads one JSON value of a fragment at a time.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}
  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\t'))
      ++at_;
  }
  bool done() {
    skip_space();
    return at_ >= text_.size();
  }
  bool take(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool take_word(std::string_view word) {
    skip_space();
    if (text_.substr(at_, word.size()) == word) {
      at_ += word.size();
      return true;
    }
    return false;
  }
  bool peek(char c) {
    skip_space();
    return at_ < text_.size() && text_[at_] == c;
  }
  // A bare token (number, true, false): up to the next ',', ']' or end.
  std::string_view token() {
    skip_space();
    size_t begin = at_;
    while (at_ < text_.size() && text_[at_] != ',' && text_[at_] != ']' && text_[at_] != ' ') ++at_;
    return text_.substr(begin, at_ - begin);
  }
  // A JSON string, unescaped into `out`.
  bool string(std::string& out) {
    if (!take('"')) return false;
    while (at_ < text_.size()) {
      char c = text_[at_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) return false;
      char escape = text_[at_++];
      switch (escape) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          uint32_t code = 0;
          if (!hex4(code)) return false;
          if (code >= 0xd800 && code < 0xdc00 && text_.substr(at_, 2) == "\\u") {
            at_ += 2;
            uint32_t low = 0;
            if (!hex4(low)) return false;
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code);
          break;
        }
        default:
          out += escape;  // " \ /
      }
    }
    return false;
  }
  size_t position() const { return at_; }

 private:
  bool hex4(uint32_t& code) {
    if (at_ + 4 > text_.size()) return false;
    auto [end, error] = std::from_chars(text_.data() + at_, text_.data() + at_ + 4, code, 16);
    if (error != std::errc() || end != text_.data() + at_ + 4) return false;
    at_ += 4;
    return true;
  }
  static void append_utf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }
  std::string_view text_;
  size_t at_ = 0;
};

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

// "YYYY-MM-DD[ hh:mm:ss[.fff]]" (UTC) -> days and milliseconds of the day.
bool parse_datetime(std::string_view text, int64_t& days, int64_t& millis_of_day) {
  auto number = [&](size_t at, size_t length, int& value) {
    if (at + length > text.size()) return false;
    auto [end, error] = std::from_chars(text.data() + at, text.data() + at + length, value);
    return error == std::errc() && end == text.data() + at + length;
  };
  int year, month, day, hour = 0, minute = 0, second = 0, millis = 0;
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day)) return false;
  if (text.size() >= 19 &&
      (!number(11, 2, hour) || !number(14, 2, minute) || !number(17, 2, second)))
    return false;
  if (text.size() > 20 && text[19] == '.') {
    std::string_view fraction = text.substr(20, 3);
    for (size_t i = 0; i < 3; ++i)
      millis =
          millis * 10 + (i < fraction.size() && std::isdigit(fraction[i]) ? fraction[i] - '0' : 0);
  }
  days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  millis_of_day = ((hour * 60 + minute) * 60 + second) * 1000LL + millis;
  return true;
}

absl::Status bad(std::string_view column, std::string_view fragment, std::string_view why) {
  return absl::InvalidArgumentError(
      str_cat("column ", column, ": value ", fragment.substr(0, 80), " ", why));
}

// Decimal text -> integer scaled by 10^scale (rounded half away from zero).
bool scaled_decimal(std::string_view text, int scale, __int128& out) {
  bool negative = !text.empty() && text.front() == '-';
  if (negative || (!text.empty() && text.front() == '+')) text.remove_prefix(1);
  if (text.find_first_of("eE") != std::string_view::npos) {
    double value = 0;
    std::string copy(text);
    char* end = nullptr;
    value = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size()) return false;
    out = static_cast<__int128>(std::llround(value * std::pow(10.0, scale)));
    if (negative) out = -out;
    return true;
  }
  __int128 value = 0;
  int decimals = -1;
  bool round_up = false;
  bool digits = false;
  for (char c : text) {
    if (c == '.') {
      if (decimals >= 0) return false;
      decimals = 0;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    digits = true;
    if (decimals >= scale) {
      if (decimals == scale) round_up = c >= '5';
      ++decimals;
      continue;
    }
    value = value * 10 + (c - '0');
    if (decimals >= 0) ++decimals;
  }
  if (!digits) return false;
  for (int i = std::max(decimals, 0); i < scale; ++i) value *= 10;
  if (round_up) ++value;
  out = negative ? -value : value;
  return true;
}

// Floor division (days before 1970 round down).
int64_t floor_div(int64_t value, int64_t divisor) {
  int64_t quotient = value / divisor;
  return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient;
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void set_column(std::string_view column) { column_ = column; }

  // A typed value (what processors make): no text to parse, except a
  // ready-made JSON fragment, which goes through value() as before.
  absl::Status typed(const BinaryType& type, const Value& cell, const Row& row) {
    using V = Value::Kind;
    if (cell.kind == V::kJson) {
      std::string_view fragment = row.text_of(cell);
      Cursor cursor(fragment);
      auto status = value(type, cursor, fragment);
      if (status.ok() && !cursor.done()) return bad(column_, fragment, "has trailing text");
      return status;
    }
    if (cell.kind == V::kNull) return missing(type);  // as JSONEachRow: null is the default
    if (type.nullable) out_ += '\0';
    switch (type.kind) {
      case Kind::kArray: {
        if (cell.kind != V::kArray) return bad(column_, row.json(cell), "is not an array");
        put_varint(out_, cell.size);
        const Value* items = row.items_of(cell);
        for (uint32_t i = 0; i < cell.size; ++i)
          if (auto status = typed(*type.element, items[i], row); !status.ok()) return status;
        return absl::OkStatus();
      }
      case Kind::kString: {
        if (cell.kind == V::kString) {
          put_varint(out_, cell.size);
          out_ += row.text_of(cell);
          return absl::OkStatus();
        }
        if (cell.kind == V::kArray) return bad(column_, row.json(cell), "is not a string");
        // Numbers as their JSON text; times as the text JSONEachRow shows.
        scratch_.clear();
        if (cell.kind == V::kDateTime)
          scratch_ = format_datetime(cell.real, cell.millis);
        else
          row.append_json(cell, scratch_);
        put_varint(out_, scratch_.size());
        out_ += scratch_;
        return absl::OkStatus();
      }
      case Kind::kUInt:
      case Kind::kInt:
      case Kind::kBool: {
        __int128 number = 0;
        switch (cell.kind) {
          case V::kInt:
          case V::kBool:
            number = cell.integer;
            break;
          case V::kUInt:
            number = cell.unsigned_value();
            break;
          case V::kDouble:
            if (!std::isfinite(cell.real)) return bad(column_, row.json(cell), "is not a number");
            number = std::llround(cell.real);
            break;
          case V::kString:
            if (row.text_of(cell) == "true" || row.text_of(cell) == "false") {
              number = row.text_of(cell) == "true" ? 1 : 0;
            } else if (!scaled_decimal(row.text_of(cell), 0, number)) {
              return bad(column_, row.json(cell), "is not a number");
            }
            break;
          default:
            return bad(column_, row.json(cell), "is not a number");
        }
        if (type.kind == Kind::kUInt && number < 0)
          return bad(column_, row.json(cell), "is negative");
        put_integer(out_, type.bytes, static_cast<unsigned __int128>(number));
        return absl::OkStatus();
      }
      case Kind::kFloat32:
      case Kind::kFloat64: {
        double number = 0;
        switch (cell.kind) {
          case V::kDouble:
            number = cell.real;
            break;
          case V::kInt:
            number = static_cast<double>(cell.integer);
            break;
          case V::kUInt:
            number = static_cast<double>(cell.unsigned_value());
            break;
          case V::kString: {
            std::string_view text = row.text_of(cell);
            auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
            if (error != std::errc() || end != text.data() + text.size())
              return bad(column_, row.json(cell), "is not a number");
            break;
          }
          default:
            return bad(column_, row.json(cell), "is not a number");
        }
        if (type.kind == Kind::kFloat32)
          put_little(out_, static_cast<float>(number));
        else
          put_little(out_, number);
        return absl::OkStatus();
      }
      case Kind::kDecimal: {
        __int128 number = 0;
        bool ok = false;
        if (cell.kind == V::kInt || cell.kind == V::kUInt) {
          number = cell.kind == V::kInt ? __int128{cell.integer} : __int128{cell.unsigned_value()};
          for (int i = 0; i < type.scale; ++i) number *= 10;
          ok = true;
        } else if (cell.kind == V::kDouble) {
          // The text JSONEachRow would carry (simdjson's shortest form), scaled exactly.
          char buffer[32];
          char* end = simdjson::internal::to_chars(buffer, nullptr, cell.real);
          ok = scaled_decimal(std::string_view(buffer, static_cast<size_t>(end - buffer)),
                              type.scale, number);
        } else if (cell.kind == V::kString) {
          ok = scaled_decimal(row.text_of(cell), type.scale, number);
        }
        if (!ok) return bad(column_, row.json(cell), "is not a decimal number");
        put_integer(out_, type.bytes, static_cast<unsigned __int128>(number));
        return absl::OkStatus();
      }
      case Kind::kDate:
      case Kind::kDateTime:
      case Kind::kDateTime64: {
        int64_t days = 0, millis = 0;
        if (cell.kind == V::kDateTime) {
          // As format_datetime() rounds it: whole seconds, then milliseconds when shown.
          auto whole = static_cast<int64_t>(std::floor(cell.real));
          int64_t ms = std::llround((cell.real - static_cast<double>(whole)) * 1000);
          if (ms >= 1000) {
            ++whole;
            ms -= 1000;
          }
          days = floor_div(whole, 86400);
          millis = (whole - days * 86400) * 1000 + (cell.millis ? ms : 0);
        } else if (cell.kind == V::kString) {
          if (!parse_datetime(row.text_of(cell), days, millis) &&
              !seconds_to_time(row.text_of(cell), days, millis))
            return bad(column_, row.json(cell), "is not a date and time");
        } else if (cell.kind == V::kInt || cell.kind == V::kUInt || cell.kind == V::kDouble) {
          double seconds = cell.kind == V::kDouble ? cell.real
                           : cell.kind == V::kInt  ? static_cast<double>(cell.integer)
                                                   : static_cast<double>(cell.unsigned_value());
          days = static_cast<int64_t>(std::floor(seconds / 86400));
          millis = std::llround((seconds - static_cast<double>(days) * 86400) * 1000);
        } else {
          return bad(column_, row.json(cell), "is not a date and time");
        }
        put_time(type, days, millis);
        return absl::OkStatus();
      }
      case Kind::kIPv4:
      case Kind::kIPv6: {
        if (cell.kind != V::kString) return bad(column_, row.json(cell), "is not an IP address");
        return put_address(type, row.text_of(cell), row.json(cell));
      }
    }
    return bad(column_, row.json(cell), "has no RowBinary encoding");
  }

  absl::Status missing(const BinaryType& type) {
    if (type.nullable) {
      out_ += '\1';
      return absl::OkStatus();
    }
    return zero(type);
  }

  absl::Status value(const BinaryType& type, Cursor& cursor, std::string_view fragment) {
    if (type.nullable) {
      if (cursor.take_word("null")) {
        out_ += '\1';
        return absl::OkStatus();
      }
      out_ += '\0';
    } else if (cursor.take_word("null")) {
      return zero(type);  // as JSONEachRow: null into a non-nullable column is its default
    }
    switch (type.kind) {
      case Kind::kArray: {
        if (!cursor.take('[')) return bad(column_, fragment, "is not an array");
        size_t count_at = out_.size();
        std::string body;
        std::swap(body, out_);  // elements first, then the count before them
        uint64_t count = 0;
        absl::Status status;
        if (!cursor.take(']')) {
          do {
            status = value(*type.element, cursor, fragment);
            if (!status.ok()) break;
            ++count;
          } while (cursor.take(','));
          if (status.ok() && !cursor.take(']')) status = bad(column_, fragment, "is not an array");
        }
        std::swap(body, out_);
        if (!status.ok()) return status;
        out_.resize(count_at);
        put_varint(out_, count);
        out_ += body;
        return absl::OkStatus();
      }
      case Kind::kString: {
        if (cursor.peek('"')) {
          scratch_.clear();
          if (!cursor.string(scratch_)) return bad(column_, fragment, "is not a JSON string");
          put_varint(out_, scratch_.size());
          out_ += scratch_;
        } else {
          std::string_view token = cursor.token();
          put_varint(out_, token.size());
          out_ += token;
        }
        return absl::OkStatus();
      }
      case Kind::kUInt:
      case Kind::kInt:
      case Kind::kBool: {
        std::string_view token = text_or_token(cursor, fragment);
        if (token == "true" || token == "false") {
          put_integer(out_, type.bytes, token == "true" ? 1 : 0);
          return absl::OkStatus();
        }
        __int128 number = 0;
        if (!scaled_decimal(token, 0, number)) return bad(column_, fragment, "is not a number");
        if (type.kind == Kind::kUInt && number < 0) return bad(column_, fragment, "is negative");
        put_integer(out_, type.bytes, static_cast<unsigned __int128>(number));
        return absl::OkStatus();
      }
      case Kind::kFloat32:
      case Kind::kFloat64: {
        std::string_view token = text_or_token(cursor, fragment);
        double number = 0;
        auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), number);
        if (error != std::errc() || end != token.data() + token.size())
          return bad(column_, fragment, "is not a number");
        if (type.kind == Kind::kFloat32)
          put_little(out_, static_cast<float>(number));
        else
          put_little(out_, number);
        return absl::OkStatus();
      }
      case Kind::kDecimal: {
        std::string_view token = text_or_token(cursor, fragment);
        __int128 number = 0;
        if (!scaled_decimal(token, type.scale, number))
          return bad(column_, fragment, "is not a decimal number");
        put_integer(out_, type.bytes, static_cast<unsigned __int128>(number));
        return absl::OkStatus();
      }
      case Kind::kDate:
      case Kind::kDateTime:
      case Kind::kDateTime64: {
        std::string_view token = text_or_token(cursor, fragment);
        int64_t days = 0, millis = 0;
        if (!parse_datetime(token, days, millis) && !seconds_to_time(token, days, millis))
          return bad(column_, fragment, "is not a date and time");
        put_time(type, days, millis);
        return absl::OkStatus();
      }
      case Kind::kIPv4:
      case Kind::kIPv6:
        return put_address(type, text_or_token(cursor, fragment), fragment);
    }
    return bad(column_, fragment, "has no RowBinary encoding");
  }

 private:
  // Epoch seconds as text -> days and milliseconds of the day.
  static bool seconds_to_time(std::string_view token, int64_t& days, int64_t& millis) {
    double seconds = 0;
    auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), seconds);
    if (error != std::errc() || end != token.data() + token.size()) return false;
    days = static_cast<int64_t>(std::floor(seconds / 86400));
    millis = std::llround((seconds - static_cast<double>(days) * 86400) * 1000);
    return true;
  }

  void put_time(const BinaryType& type, int64_t days, int64_t millis) {
    if (type.kind == Kind::kDate) {
      put_little(out_, static_cast<uint16_t>(days));
    } else if (type.kind == Kind::kDateTime) {
      put_little(out_, static_cast<uint32_t>(days * 86400 + millis / 1000));
    } else {
      int64_t total = days * 86400000 + millis;  // milliseconds, then to the type's scale
      for (int i = 3; i < type.scale; ++i) total *= 10;
      for (int i = type.scale; i < 3; ++i) total /= 10;
      put_little(out_, total);
    }
  }

  absl::Status put_address(const BinaryType& type, std::string_view address_text,
                           std::string_view fragment) {
    std::string text(address_text);
    if (type.kind == Kind::kIPv4) {
      in_addr address{};
      if (inet_pton(AF_INET, text.c_str(), &address) != 1)
        return bad(column_, fragment, "is not an IPv4 address");
      put_little(out_, ntohl(address.s_addr));
      return absl::OkStatus();
    }
    in6_addr address{};
    if (text.find(':') == std::string::npos) text = "::ffff:" + text;
    if (inet_pton(AF_INET6, text.c_str(), &address) != 1)
      return bad(column_, fragment, "is not an IPv6 address");
    out_.append(reinterpret_cast<const char*>(address.s6_addr), 16);
    return absl::OkStatus();
  }

  // A number may arrive quoted ("5"), as JSONEachRow accepts it.
  std::string_view text_or_token(Cursor& cursor, std::string_view) {
    if (cursor.peek('"')) {
      scratch_.clear();
      cursor.string(scratch_);
      return scratch_;
    }
    return cursor.token();
  }

  absl::Status zero(const BinaryType& type) {
    switch (type.kind) {
      case Kind::kArray:
      case Kind::kString:
        out_ += '\0';
        break;
      case Kind::kFloat32:
        put_little(out_, 0.0f);
        break;
      case Kind::kFloat64:
        put_little(out_, 0.0);
        break;
      case Kind::kDate:
        put_little(out_, uint16_t{0});
        break;
      case Kind::kDateTime:
      case Kind::kIPv4:
        put_little(out_, uint32_t{0});
        break;
      case Kind::kDateTime64:
        put_little(out_, int64_t{0});
        break;
      case Kind::kIPv6:
        out_.append(16, '\0');
        break;
      default:
        put_integer(out_, type.bytes, 0);
    }
    return absl::OkStatus();
  }

  std::string_view column_;
  std::string& out_;
  std::string scratch_;
};

}  // namespace

absl::StatusOr<BinaryType> BinaryType::parse(std::string_view text) {
  text = trim(text);
  BinaryType type;
  while (unwrap(text, "LowCardinality")) {
  }
  if (unwrap(text, "Nullable")) {
    type.nullable = true;
    while (unwrap(text, "LowCardinality")) {
    }
  }
  if (unwrap(text, "Array")) {
    auto element = parse(text);
    if (!element.ok()) return element.status();
    type.kind = Kind::kArray;
    type.element = std::make_unique<BinaryType>(std::move(*element));
    return type;
  }
  auto integer = [&](Kind kind, std::string_view digits) -> absl::StatusOr<BinaryType> {
    int bits = 0;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (error != std::errc() || end != digits.data() + digits.size() ||
        (bits != 8 && bits != 16 && bits != 32 && bits != 64))
      return absl::UnimplementedError(str_cat("RowBinary: no encoding for ", text));
    type.kind = kind;
    type.bytes = bits / 8;
    return std::move(type);
  };
  if (text.substr(0, 4) == "UInt") return integer(Kind::kUInt, text.substr(4));
  if (text.substr(0, 3) == "Int") return integer(Kind::kInt, text.substr(3));
  if (text == "Float32") {
    type.kind = Kind::kFloat32;
  } else if (text == "Float64") {
    type.kind = Kind::kFloat64;
  } else if (text == "String") {
    type.kind = Kind::kString;
  } else if (text == "Bool") {
    type.kind = Kind::kBool;
    type.bytes = 1;
  } else if (text == "Date") {
    type.kind = Kind::kDate;
  } else if (text == "IPv4") {
    type.kind = Kind::kIPv4;
  } else if (text == "IPv6") {
    type.kind = Kind::kIPv6;
  } else if (text.substr(0, 10) == "DateTime64") {
    auto args = arguments(text);
    type.kind = Kind::kDateTime64;
    type.scale = args.empty() ? 3 : args[0];
  } else if (text == "DateTime" || text.substr(0, 9) == "DateTime(") {
    type.kind = Kind::kDateTime;
  } else if (text.substr(0, 7) == "Decimal") {
    auto args = arguments(text);
    int precision = 0;
    if (text.substr(0, 8) == "Decimal(" && args.size() == 2) {
      precision = args[0];
      type.scale = args[1];
    } else if (args.size() == 1) {  // Decimal32(S), Decimal64(S), Decimal128(S)
      precision = text.substr(0, 9) == "Decimal32" ? 9 : text.substr(0, 9) == "Decimal64" ? 18 : 38;
      type.scale = args[0];
    } else {
      return absl::UnimplementedError(str_cat("RowBinary: no encoding for ", text));
    }
    type.kind = Kind::kDecimal;
    type.bytes = precision <= 9 ? 4 : precision <= 18 ? 8 : 16;
  } else {
    return absl::UnimplementedError(str_cat("RowBinary: no encoding for ", text));
  }
  return type;
}

absl::StatusOr<RowBinaryEncoder> RowBinaryEncoder::create(const TableSchema& schema,
                                                          const ServerProfile& profile) {
  RowBinaryEncoder encoder;
  for (const auto& column : schema.columns) {
    auto type = BinaryType::parse(ColumnType::parse(column.type).render(profile));
    if (!type.ok())
      return absl::UnimplementedError(
          str_cat("table ", schema.name, " column ", column.name, ": ", type.status().message()));
    encoder.index_.emplace(column.name, encoder.columns_.size());
    encoder.columns_.push_back(Column{column.name, std::move(*type), !column.default_expr.empty()});
  }
  return encoder;
}

size_t RowBinaryEncoder::position(std::string_view name) const {
  if (auto hit = by_address_.find(name.data());
      hit != by_address_.end() && columns_[hit->second].name == name)
    return hit->second;
  auto hit = index_.find(name);
  if (hit == index_.end()) return columns_.size();
  by_address_[name.data()] = hit->second;
  return hit->second;
}

absl::StatusOr<std::string> RowBinaryEncoder::encode(const std::vector<const Row*>& rows,
                                                     std::string& out) const {
  // Which DEFAULT-expression columns the rows fill: all of them, or none.
  const size_t width = columns_.size();
  std::vector<size_t> filled(width, 0);
  std::vector<const Value*> cells(rows.size() * width, nullptr);  // row-major
  // Rows of one processor name the same columns in the same order: the
  // positions of the previous row's names are reused when they match.
  std::vector<std::string_view> layout;
  std::vector<size_t> positions;
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row_cells = rows[r]->cells;
    bool same = row_cells.size() == layout.size();
    for (size_t i = 0; same && i < row_cells.size(); ++i)
      same = row_cells[i].name.data() == layout[i].data() &&
             row_cells[i].name.size() == layout[i].size();
    if (!same) {
      layout.clear();
      positions.clear();
      for (const auto& cell : row_cells) {
        size_t at = position(cell.name);
        if (at == width)
          return absl::InvalidArgumentError(str_cat("column ", cell.name, " is not in the table"));
        layout.push_back(cell.name);
        positions.push_back(at);
      }
    }
    const Value** slots = cells.data() + r * width;
    for (size_t i = 0; i < row_cells.size(); ++i) {
      size_t at = positions[i];
      if (slots[at] == nullptr) ++filled[at];
      slots[at] = &row_cells[i].value;
    }
  }
  std::vector<bool> included(columns_.size(), true);
  std::string column_list;
  for (size_t c = 0; c < columns_.size(); ++c) {
    if (columns_[c].has_default_expr) {
      if (filled[c] == 0) {
        included[c] = false;
        continue;
      }
      if (filled[c] != rows.size())
        return absl::FailedPreconditionError(
            str_cat("column ", columns_[c].name, " has a DEFAULT and only some rows fill it"));
    }
    if (!column_list.empty()) column_list += ", ";
    str_append(column_list, "`", columns_[c].name, "`");
  }
  Writer writer(out);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < columns_.size(); ++c) {
      if (!included[c]) continue;
      writer.set_column(columns_[c].name);
      const Value* cell = cells[r * width + c];
      absl::Status status = cell == nullptr ? writer.missing(columns_[c].type)
                                            : writer.typed(columns_[c].type, *cell, *rows[r]);
      if (!status.ok()) return status;
    }
  }
  return column_list;
}

}  // namespace telekern::etl
