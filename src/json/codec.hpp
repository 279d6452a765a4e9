// JSON text <-> json::Value. Parsing is safe for hostile input: depth-limited, UTF-8
// validated, and numbers never reach RapidJSON 1.1.0's vulnerable exponent code
// (CVE-2024-38517): they are read as raw text and converted with std::from_chars
// (strtod without the C locale: a host calling setlocale cannot change what "1.5" means).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "json/value.hpp"
#include "util/result.hpp"

namespace atrium::json {

inline constexpr int kMaxDepth = 64;              // docs/protocol.md: deeper gets bad_json

struct ParseOptions {
  int max_depth = kMaxDepth;
};

// Errors: ErrorCode::bad_json with a one-line message ("invalid JSON at offset 12: ...",
// "JSON nested deeper than 64 levels", "number out of range").
Result<Value> parse(std::string_view text, const ParseOptions& options = {});

// Receives the members of a top-level object one by one (parse_members).
class MemberSink {
 public:
  virtual void member(std::string_view key, Value&& value) = 0;

 protected:
  ~MemberSink() = default;
};

// parse() for a text that should hold one object, without building that object: each
// top-level member goes to `sink` as soon as it is parsed, in text order (a key that comes
// twice comes twice). Every value below the top is a Value as parse() builds it. True when
// the text is an object; false when it is other valid JSON (nothing went to the sink).
// The same errors as parse(). A sink may parse again: that parse gets scratch of its own.
// Why: a client request is an envelope of a few known keys, and building, searching and
// freeing it as an object was about a quarter of the engine's work for an emit
// (bench/README.md "Fan-out through the engine").
Result<bool> parse_members(std::string_view text, MemberSink& sink, const ParseOptions& options = {});

// Compact JSON appended to `out`. Integral numbers with |x| < 2^53 are written without a
// fraction ("3", not "3.0"); others as the shortest text that reads back the same double.
// Values are assumed valid (finite numbers, UTF-8 strings): the converters check that.
void write(const Value& v, std::string& out);
std::string to_json(const Value& v);

// Appends `s` as a JSON string literal, quotes included. A byte that is not part of
// valid UTF-8 is written as U+FFFD: whatever a script or a client hands the engine, no
// frame it writes can make a browser or `ws` fail the connection (and lose every line
// coalesced with it).
void write_string(std::string_view s, std::string& out);
// Appends a number as write() would.
void write_number(double n, std::string& out);

// write() and write_string() into [p, end) instead of a string: the end of what was
// written, or nullptr when it does not fit (what lies in [p, end) is then unspecified).
// Nothing is appended piece by piece: a patch's hot paths (state/patch.cpp write_op, the
// compaction's candidate in state/compact.cpp) write many short pieces, and a string's
// push_back and append cost a capacity check and a call each.
char* write_into(const Value& v, char* p, char* end);
char* write_string_into(std::string_view s, char* p, char* end);

// The longest text format_number writes ("-2.2250738585072014e-308" is 24).
inline constexpr std::size_t kMaxNumberChars = 32;
// Writes n into buf (kMaxNumberChars bytes) as write() would, and returns its length: what
// a size estimate (state/diff.cpp number_size) should call rather than std::to_chars, whose
// shortest form costs ~600 instructions where the short decimals of game state ("186.07")
// take ~150 here, and a number written lately on this thread ~30.
std::size_t format_number(double n, char* buf) noexcept;

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
// The one check behind parse() and the Lua converters.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace atrium::json
