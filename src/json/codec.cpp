// JSON text <-> json::Value. Parsing goes through RapidJSON's SAX Reader with numbers
// as raw text (CVE-2024-38517 lives in its number decoder); writing is our own, since
// it appends straight to a std::string (bench/README.md "Diff" has the measurement).
#include "json/codec.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace atrium::json {

namespace {

// ---- numbers ------------------------------------------------------------------------

// Decimal exponent of the leading significant digit of a JSON number's text, saturated
// far beyond any double so that "1e-2147483647" cannot overflow an int (the CVE).
long long magnitude_of(std::string_view text) noexcept {
  std::size_t i = text.front() == '-' ? 1 : 0;
  long long mag = 0;
  bool seen_digit = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (seen_digit || text[i] != '0') {
      if (seen_digit) ++mag;
      seen_digit = true;
    }
  }
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (!seen_digit) {
        --mag;
        if (text[i] != '0') seen_digit = true;
      }
    }
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    const bool negative = i < text.size() && text[i] == '-';
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    long long exp = 0;
    for (; i < text.size(); ++i) exp = std::min(exp * 10 + (text[i] - '0'), 1'000'000'000LL);
    mag += negative ? -exp : exp;
  }
  return mag;
}

// RapidJSON has checked the syntax. from_chars ignores the C locale (a host that calls
// setlocale must not change what "1.5" means) and needs no NUL terminator.
bool number_from_text(std::string_view text, double& out) noexcept {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return std::isfinite(out);
  if (r.ec != std::errc::result_out_of_range) return false;
  // Out of range both ways: too small is 0 (as strtod rounds it), too big is refused.
  if (magnitude_of(text) > 0) return false;
  out = text.front() == '-' ? -0.0 : 0.0;
  return true;
}

// ---- parsing ------------------------------------------------------------------------

const char* reason_of(rapidjson::ParseErrorCode code) noexcept {
  using namespace rapidjson;
  switch (code) {
    case kParseErrorDocumentEmpty: return "empty document";
    case kParseErrorDocumentRootNotSingular: return "more than one value";
    case kParseErrorValueInvalid: return "invalid value";
    case kParseErrorObjectMissName: return "expected a member name";
    case kParseErrorObjectMissColon: return "expected ':' after a member name";
    case kParseErrorObjectMissCommaOrCurlyBracket: return "expected ',' or '}' in object";
    case kParseErrorArrayMissCommaOrSquareBracket: return "expected ',' or ']' in array";
    case kParseErrorStringUnicodeEscapeInvalidHex: return "bad \\u escape in string";
    case kParseErrorStringUnicodeSurrogateInvalid: return "invalid surrogate pair in string";
    case kParseErrorStringEscapeInvalid: return "invalid escape in string";
    case kParseErrorStringMissQuotationMark: return "unterminated string";
    case kParseErrorStringInvalidEncoding: return "invalid UTF-8 in string";
    case kParseErrorNumberTooBig: return "number out of range";
    case kParseErrorNumberMissFraction: return "expected digits after '.'";
    case kParseErrorNumberMissExponent: return "expected digits in exponent";
    default: return "invalid JSON";
  }
}

// Builds the tree on an explicit stack (the Reader is iterative too), so nesting costs
// heap, never C stack; the depth limit bounds it anyway.
class Builder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Builder> {
 public:
  enum class Stop { none, too_deep, bad_number, bad_utf8 };

  // `stack` and `keys` are the builder's scratch, empty; `sink`, when given, takes the
  // members of a top-level object instead of the object (parse_members).
  Builder(int max_depth, std::vector<Value>& stack, std::vector<std::string>& keys, MemberSink* sink)
      : max_depth_(max_depth), stack_(stack), keys_(keys), sink_(sink) {}

  bool Null() { return add(Value()); }
  bool Bool(bool b) { return add(Value(b)); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    double d = 0;
    if (!number_from_text(std::string_view(s, n), d)) return fail(Stop::bad_number);
    return add(Value(d));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    // The encoding flag checks raw bytes, but RapidJSON 1.1.0 turns a lone low
    // surrogate escape ("\udc00") into the invalid bytes ED B0 80.
    const std::string_view text(s, n);
    if (!is_valid_utf8(text)) return fail(Stop::bad_utf8);
    return add(Value(text));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    const std::string_view text(s, n);
    if (!is_valid_utf8(text)) return fail(Stop::bad_utf8);
    keys_.emplace_back(text);
    return true;
  }
  bool StartObject() { return open(Value::object()); }
  bool StartArray() { return open(Value::array()); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }

  Stop stop() const noexcept { return stop_; }
  Value take_root() { return std::move(root_); }

 private:
  bool fail(Stop why) {
    stop_ = why;
    return false;
  }
  bool open(Value container) {
    if (static_cast<int>(stack_.size()) >= max_depth_) return fail(Stop::too_deep);
    stack_.push_back(std::move(container));
    return true;
  }
  bool close() {
    Value done = std::move(stack_.back());
    stack_.pop_back();
    return add(std::move(done));
  }
  bool add(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Value& top = stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
    } else if (sink_ && stack_.size() == 1) {
      sink_->member(keys_.back(), std::move(v));
      keys_.pop_back();
    } else {
      top.set(keys_.back(), std::move(v));          // a duplicate key: the last one wins
      keys_.pop_back();
    }
    return true;
  }

  int max_depth_;
  Stop stop_ = Stop::none;
  std::vector<Value>& stack_;
  std::vector<std::string>& keys_;
  MemberSink* sink_;
  Value root_;
};

bool is_json_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

Error parse_error(std::size_t offset, const char* reason) {
  return make_error(ErrorCode::bad_json,
                    "invalid JSON at offset " + std::to_string(offset) + ": " + reason);
}

// ---- writing ------------------------------------------------------------------------

constexpr double kExact = 9007199254740992.0;      // 2^53: integers below it are exact

// Powers of ten up to the 15 digits short_decimal() writes; every one is exact as a double.
constexpr auto kPow10 = [] {
  std::array<std::uint64_t, 16> p{};
  p[0] = 1;
  for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
  return p;
}();
constexpr int kMaxDecimals = 15;

// The text of a recently written fraction. A patch writes most of its numbers several
// times (the diff's size estimate, the patch compaction's, the op itself: embed_bench's
// arena), and a state's numbers change a few at a time: a hit costs a copy, where even a
// short decimal costs ~150 instructions to find and std::to_chars ~600.
struct NumberText {
  std::uint64_t bits = 0;
  std::uint8_t size = 0;                            // 0: empty
  char text[23];

  static std::uint64_t bits_of(double n) noexcept {
    std::uint64_t b;
    std::memcpy(&b, &n, sizeof b);
    return b;
  }
  bool holds(double n) const noexcept { return size != 0 && bits == bits_of(n); }
  std::size_t copy_to(char* buf) const noexcept {
    std::memcpy(buf, text, sizeof text);
    return size;
  }
  void keep(double n, const char* buf, std::size_t len) noexcept {
    if (len > sizeof text) return;
    bits = bits_of(n);
    size = static_cast<std::uint8_t>(len);
    std::memcpy(text, buf, len);
  }
};

// Direct-mapped by a hash of the bits: a few kilobytes per thread, no eviction to keep.
struct RecentNumbers {
  static constexpr int kBits = 8;
  NumberText slots[1 << kBits];
  NumberText& slot(double n) noexcept {
    return slots[(NumberText::bits_of(n) * 0x9E3779B97F4A7C15ull) >> (64 - kBits)];
  }
};
thread_local RecentNumbers recent_numbers;

// "-" if negative, then m / 10^k with its k fraction digits ("186.07").
std::size_t write_decimal(bool negative, std::uint64_t m, int k, char* buf) noexcept {
  char* p = buf;
  if (negative) *p++ = '-';
  p = std::to_chars(p, buf + kMaxNumberChars, m / kPow10[k]).ptr;
  *p++ = '.';
  std::uint64_t fraction = m % kPow10[k];
  for (int i = k; i-- > 0; fraction /= 10) p[i] = static_cast<char>('0' + fraction % 10);
  return static_cast<std::size_t>(p + k - buf);
}

// What std::to_chars(double) writes, found cheaply where it is a short decimal, as game
// state mostly holds (186.07, 0.5): the fewest fraction digits k whose nearest decimal
// m / 10^k reads back as n. Dividing two exact doubles rounds as reading the decimal does,
// so `m / 10^k == |n|` is that read-back. Why the text is to_chars' own:
// - Shortest: a shorter decimal that reads back would have fewer fraction digits, and the
//   loop tried those first (|n| * 10^k is within 0.2 of it, so the rounding finds it).
// - The only one of its length: m has at most 15 digits, and decimals of 15 digits lie
//   more than 4 doubles apart, so no other one reads back as n.
// - Fixed notation: for |n| in [1e-3, 1e15) scientific is never shorter ("1.5e+02" against
//   "150"; "1e-03" against "0.001", a tie, which to_chars settles for fixed).
// 0 when none is found (more than 15 digits, or out of range): to_chars decides.
std::size_t short_decimal(double n, char* buf) noexcept {
  const double a = std::fabs(n);
  if (!(a >= 1e-3 && a < 1e15)) return 0;
  for (int k = 1; k <= kMaxDecimals; ++k) {
    const auto scale = static_cast<double>(kPow10[k]);
    const double scaled = a * scale;
    if (scaled >= 1e15) return 0;
    const auto m = static_cast<std::uint64_t>(scaled + 0.5);   // the nearest integer
    if (m >= kPow10[15]) return 0;
    if (static_cast<double>(m) / scale == a) return write_decimal(n < 0, m, k, buf);
  }
  return 0;
}

// 0: copy as is; 1: two-character escape; 2: \u00XX; 3: the start of a multi-byte
// sequence, copied when it is valid UTF-8.
constexpr unsigned char escape_kind(unsigned char c) noexcept {
  if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
    return 1;
  if (c >= 0x80) return 3;
  return c < 0x20 ? 2 : 0;
}

// The length of the valid UTF-8 sequence at s[i] (a byte >= 0x80), or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const std::size_t n = std::min<std::size_t>(4, s.size() - i);
  for (std::size_t len = 2; len <= n; ++len)
    if (is_valid_utf8(s.substr(i, len))) return len;
  return 0;
}

struct EscapeTable {
  unsigned char kind[256];
  constexpr EscapeTable() : kind() {
    for (int c = 0; c < 256; ++c) kind[c] = escape_kind(static_cast<unsigned char>(c));
  }
};
constexpr EscapeTable kEscapes;

char short_escape(char c) noexcept {
  switch (c) {
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return c;                              // '"' and '\\'
  }
}

void write_value(const Value& v, std::string& out);

void write_array(const Value& v, std::string& out) {
  out.push_back('[');
  bool first = true;
  for (const Value& item : v.items()) {
    if (!first) out.push_back(',');
    first = false;
    write_value(item, out);
  }
  out.push_back(']');
}

void write_object(const Value& v, std::string& out) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : v.members()) {
    if (!first) out.push_back(',');
    first = false;
    write_string(key, out);
    out.push_back(':');
    write_value(value, out);
  }
  out.push_back('}');
}

// Recursion is bounded by the trees we build: parse and the Lua converters cap depth.
void write_value(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::null: out.append("null", 4); break;
    case Value::Kind::boolean: v.as_bool() ? out.append("true", 4) : out.append("false", 5); break;
    case Value::Kind::number: write_number(v.as_number(), out); break;
    case Value::Kind::string: write_string(v.as_string(), out); break;
    case Value::Kind::array: write_array(v, out); break;
    case Value::Kind::object: write_object(v, out); break;
  }
}

// One parse: parse() and parse_members() differ only in the sink.
Result<Value> run_parse(std::string_view text, const ParseOptions& options, MemberSink* sink) {
  constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag;
  // RapidJSON copies every string and number through its reader's scratch stack, which it
  // allocates on first use, and the builder keeps two stacks of its own. A client message
  // is parsed per request, so each thread keeps one set of them for texts up to
  // kReuseBytes, allocated once, not per message; a larger text (or a parse inside a
  // sink's callback) gets its own, so no thread keeps large ones.
  constexpr std::size_t kReuseBytes = 16 * 1024;
  struct Scratch {
    rapidjson::Reader reader;                      // allocates nothing unless used
    std::vector<Value> stack;
    std::vector<std::string> keys;
    bool busy = false;
  };
  thread_local Scratch kept;
  Scratch own;
  const bool reuse = text.size() <= kReuseBytes && !kept.busy;
  Scratch& scratch = reuse ? kept : own;
  scratch.busy = true;
  struct Release {
    Scratch& s;
    ~Release() {
      s.stack.clear();  // what an error left behind
      s.keys.clear();
      s.busy = false;
    }
  } release{scratch};

  rapidjson::MemoryStream in(text.data(), text.size());
  Builder builder(options.max_depth, scratch.stack, scratch.keys, sink);
  const rapidjson::ParseResult r = scratch.reader.Parse<kFlags>(in, builder);
  if (r.IsError()) {
    switch (builder.stop()) {
      case Builder::Stop::too_deep:
        return make_error(ErrorCode::bad_json, "JSON nested deeper than " +
                                                   std::to_string(options.max_depth) + " levels");
      case Builder::Stop::bad_number: return make_error(ErrorCode::bad_json, "number out of range");
      case Builder::Stop::bad_utf8: return parse_error(in.Tell(), "invalid UTF-8 in string");
      case Builder::Stop::none: break;
    }
    return parse_error(r.Offset(), reason_of(r.Code()));
  }
  // kParseStopWhenDoneFlag, then our own check: MemoryStream reads an embedded NUL as
  // the end of input, so "{} \0x" would otherwise pass.
  std::size_t pos = in.Tell();
  while (pos < text.size() && is_json_space(text[pos])) ++pos;
  if (pos != text.size()) return parse_error(pos, "more than one value");
  return builder.take_root();
}

}  // namespace

Result<Value> parse(std::string_view text, const ParseOptions& options) {
  return run_parse(text, options, nullptr);
}

Result<bool> parse_members(std::string_view text, MemberSink& sink, const ParseOptions& options) {
  Result<Value> root = run_parse(text, options, &sink);
  if (!root) return root.error();
  return root.value().is_object();
}

void write(const Value& v, std::string& out) { write_value(v, out); }

std::string to_json(const Value& v) {
  std::string out;
  write_value(v, out);
  return out;
}

// Keys, paths and names rarely need an escape: those go out in one copy.
void write_string(std::string_view s, std::string& out) {
  std::size_t plain = 0;
  while (plain < s.size() && kEscapes.kind[static_cast<unsigned char>(s[plain])] == 0) ++plain;
  if (plain == s.size()) {
    out.push_back('"');
    out.append(s.data(), s.size());
    out.push_back('"');
    return;
  }
  out.reserve(out.size() + s.size() + 8);
  out.push_back('"');
  std::size_t run = 0;                              // start of the bytes not yet copied
  for (std::size_t i = plain; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const unsigned char kind = kEscapes.kind[c];
    if (kind == 0) continue;
    if (kind == 3) {
      if (const std::size_t len = utf8_sequence(s, i)) {
        i += len - 1;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (kind == 3) {
      out.append("\xEF\xBF\xBD", 3);  // U+FFFD: no frame carries a byte that is not UTF-8
    } else if (kind == 1) {
      const char e[2] = {'\\', short_escape(static_cast<char>(c))};
      out.append(e, 2);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      const char e[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(e, 6);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

char* write_string_into(std::string_view s, char* p, char* end) {
  std::size_t plain = 0;
  while (plain < s.size() && kEscapes.kind[static_cast<unsigned char>(s[plain])] == 0) ++plain;
  if (plain == s.size()) {
    if (static_cast<std::size_t>(end - p) < s.size() + 2) return nullptr;
    *p++ = '"';
    std::memcpy(p, s.data(), s.size());
    p += s.size();
    *p++ = '"';
    return p;
  }
  thread_local std::string escaped;                 // rare: written the long way
  escaped.clear();
  write_string(s, escaped);
  if (static_cast<std::size_t>(end - p) < escaped.size()) return nullptr;
  std::memcpy(p, escaped.data(), escaped.size());
  return p + escaped.size();
}

char* write_into(const Value& v, char* p, char* end) {
  const auto put = [&](const char* text, std::size_t n) -> char* {
    if (static_cast<std::size_t>(end - p) < n) return nullptr;
    std::memcpy(p, text, n);
    return p + n;
  };
  switch (v.kind()) {
    case Value::Kind::null: return put("null", 4);
    case Value::Kind::boolean: return v.as_bool() ? put("true", 4) : put("false", 5);
    case Value::Kind::number: {
      if (static_cast<std::size_t>(end - p) >= kMaxNumberChars) return p + format_number(v.as_number(), p);
      char buf[kMaxNumberChars];
      const std::size_t n = format_number(v.as_number(), buf);
      return put(buf, n);
    }
    case Value::Kind::string: return write_string_into(v.as_string(), p, end);
    case Value::Kind::array: {
      if (p == end) return nullptr;
      *p++ = '[';
      bool first = true;
      for (const Value& item : v.items()) {
        if (!first) {
          if (p == end) return nullptr;
          *p++ = ',';
        }
        first = false;
        if (!(p = write_into(item, p, end))) return nullptr;
      }
      if (p == end) return nullptr;
      *p++ = ']';
      return p;
    }
    case Value::Kind::object: {
      if (p == end) return nullptr;
      *p++ = '{';
      bool first = true;
      for (const auto& [key, member] : v.members()) {
        if (!first) {
          if (p == end) return nullptr;
          *p++ = ',';
        }
        first = false;
        if (!(p = write_string_into(key, p, end)) || p == end) return nullptr;
        *p++ = ':';
        if (!(p = write_into(member, p, end))) return nullptr;
      }
      if (p == end) return nullptr;
      *p++ = '}';
      return p;
    }
  }
  return p;
}

void write_number(double n, std::string& out) {
  char buf[kMaxNumberChars];
  out.append(buf, format_number(n, buf));
}

std::size_t format_number(double n, char* buf) noexcept {
  if (!std::isfinite(n)) {                          // a converter let one through: a bug
    assert(false && "non-finite number reached the JSON writer");
    std::memcpy(buf, "null", 4);
    return 4;
  }
  char* const end = buf + kMaxNumberChars;
  if (n > -kExact && n < kExact && n == std::trunc(n)) {
    const auto integer = static_cast<std::int64_t>(n);
    return static_cast<std::size_t>(std::to_chars(buf, end, integer).ptr - buf);
  }
  NumberText& slot = recent_numbers.slot(n);
  if (slot.holds(n)) return slot.copy_to(buf);
  std::size_t len = short_decimal(n, buf);
  if (len == 0) len = static_cast<std::size_t>(std::to_chars(buf, end, n).ptr - buf);
  slot.keep(n, buf, len);
  return len;
}

bool is_valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    // ASCII runs dominate real text: test eight bytes at a time.
    if (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    unsigned lo = 0x80, hi = 0xBF;                  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;                     // overlong
      if (c == 0xED) hi = 0x9F;                     // surrogates U+D800..DFFF
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;                     // overlong
      if (c == 0xF4) hi = 0x8F;                     // above U+10FFFF
    } else {
      return false;                                 // continuation byte, C0/C1, F5..FF
    }
    if (end - p <= extra) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int k = 2; k <= extra; ++k) {
      if ((p[k] & 0xC0) != 0x80) return false;
    }
    p += extra + 1;
  }
  return true;
}

}  // namespace atrium::json
