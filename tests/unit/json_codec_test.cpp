// JSON text <-> json::Value: hostile input (RapidJSON 1.1.0 pitfalls), and the writer.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "json/codec.hpp"

using atrium::ErrorCode;
using atrium::json::is_valid_utf8;
using atrium::json::parse;
using atrium::json::to_json;
using atrium::json::Value;

namespace {

std::string nested_arrays(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') +
         std::string(static_cast<std::size_t>(depth), ']');
}

std::string error_of(std::string_view text) {
  auto r = parse(text);
  if (r) return "";
  CHECK(r.error().code == ErrorCode::bad_json);
  return r.error().message;
}

std::string roundtrip(std::string_view text) {
  auto r = parse(text);
  REQUIRE(r.ok());
  return to_json(r.value());
}

}  // namespace

TEST_CASE("a number with a huge negative exponent parses without crashing (CVE-2024-38517)") {
  auto r = parse("0.0000074836628E-2147483636");
  REQUIRE(r.ok());
  CHECK(r.value().as_number() == 0.0);
  auto in_array = parse("[0.0000074836628E-2147483636, -1e-2147483647]");
  REQUIRE(in_array.ok());
  CHECK(in_array.value().items()[1].as_number() == 0.0);
}

TEST_CASE("JSON nested 64 levels deep parses and 65 levels is refused") {
  CHECK(parse(nested_arrays(64)).ok());
  CHECK(error_of(nested_arrays(65)) == "JSON nested deeper than 64 levels");
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"a\":";
  objects += "1" + std::string(65, '}');
  CHECK(error_of(objects) == "JSON nested deeper than 64 levels");
}

TEST_CASE("a million nested brackets are refused without exhausting the stack") {
  CHECK(error_of(nested_arrays(1'000'000)) == "JSON nested deeper than 64 levels");
}

TEST_CASE("the depth limit can be set per call") {
  atrium::json::ParseOptions shallow;
  shallow.max_depth = 2;
  CHECK(parse("[[1]]", shallow).ok());
  auto r = parse("[[[1]]]", shallow);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "JSON nested deeper than 2 levels");
}

TEST_CASE("numbers too large for a double are refused (1e400)") {
  CHECK(error_of("1e400").find("number out of range") != std::string::npos);
  CHECK(error_of("[1.8e308]") == "number out of range");
  CHECK(error_of("-1.8e308") == "number out of range");
  CHECK(error_of("123456789e305") == "number out of range");
}

TEST_CASE("numbers too small for a double underflow to zero") {
  CHECK(parse("1e-400").value().as_number() == 0.0);
  CHECK(std::signbit(parse("-1e-400").value().as_number()));
  CHECK(parse("4.9e-324").value().as_number() > 0);   // the smallest denormal survives
  CHECK(parse("1.7976931348623157e308").value().as_number() ==
        std::numeric_limits<double>::max());
}

TEST_CASE("numbers parse exactly, whatever their form") {
  CHECK(parse("0").value().as_number() == 0);
  CHECK(std::signbit(parse("-0").value().as_number()));
  CHECK(parse("12345678901").value().as_number() == 12345678901.0);
  CHECK(parse("0.1").value().as_number() == 0.1);
  CHECK(parse("1E+2").value().as_number() == 100);
  CHECK(parse("-2.5e-3").value().as_number() == -0.0025);
  CHECK(parse("18446744073709551616").value().as_number() == 18446744073709551616.0);
}

TEST_CASE("NaN, Infinity and malformed numbers are refused") {
  CHECK_FALSE(error_of("NaN").empty());
  CHECK_FALSE(error_of("Infinity").empty());
  CHECK_FALSE(error_of("-Infinity").empty());
  CHECK_FALSE(error_of("01").empty());
  CHECK_FALSE(error_of("1.").empty());
  CHECK_FALSE(error_of("1e").empty());
  CHECK_FALSE(error_of("+1").empty());
  CHECK_FALSE(error_of(".5").empty());
}

TEST_CASE("invalid UTF-8 in strings and keys is refused") {
  CHECK(error_of("\"\xff\"").find("invalid UTF-8") != std::string::npos);
  CHECK_FALSE(error_of("\"\xc0\xaf\"").empty());        // overlong '/'
  CHECK_FALSE(error_of("\"\xed\xa0\x80\"").empty());    // a surrogate written as UTF-8
  CHECK_FALSE(error_of("\"\xf4\x90\x80\x80\"").empty()); // above U+10FFFF
  CHECK_FALSE(error_of("\"\xe2\x82\"").empty());        // truncated sequence
  CHECK_FALSE(error_of("{\"\xff\":1}").empty());
}

TEST_CASE("a lone surrogate escape is refused, a surrogate pair is decoded") {
  // RapidJSON 1.1.0 writes "\udc00" out as the invalid bytes ED B0 80.
  CHECK(error_of("\"\\udc00\"").find("invalid UTF-8") != std::string::npos);
  CHECK_FALSE(error_of("\"\\ud800\"").empty());
  CHECK_FALSE(error_of("{\"\\udfff\":1}").empty());
  CHECK(parse("\"\\ud83d\\ude00\"").value().as_string() == "\xf0\x9f\x98\x80");
  CHECK(parse("\"\\u00e9\"").value().as_string() == "\xc3\xa9");
}

TEST_CASE("a duplicate key keeps the last value at the first position") {
  auto r = parse(R"({"a":1,"b":2,"a":3})");
  REQUIRE(r.ok());
  REQUIRE(r.value().size() == 2);
  CHECK(r.value().members()[0].first == "a");
  CHECK(r.value().members()[0].second.as_number() == 3);
  CHECK(to_json(r.value()) == R"({"a":3,"b":2})");
}

TEST_CASE("trailing garbage is refused and trailing whitespace is not") {
  CHECK(parse(" {} \n\t\r").ok());
  CHECK(error_of("{} x") == "invalid JSON at offset 3: more than one value");
  CHECK_FALSE(error_of("{}{}").empty());
  CHECK_FALSE(error_of("1 2").empty());
  CHECK_FALSE(error_of(std::string_view("{} \0x", 5)).empty());   // NUL is not the end
  CHECK_FALSE(error_of(std::string_view("{}\0", 3)).empty());
}

TEST_CASE("malformed documents are refused with an offset") {
  CHECK(error_of("") == "invalid JSON at offset 0: empty document");
  CHECK(error_of("{\"a\" 1}") == "invalid JSON at offset 5: expected ':' after a member name");
  CHECK(error_of("[1,]").find("invalid JSON at offset 3") == 0);
  CHECK_FALSE(error_of("{'a':1}").empty());
  CHECK_FALSE(error_of("[1 2]").empty());
  CHECK_FALSE(error_of("\"abc").empty());
  CHECK_FALSE(error_of("tru").empty());
  CHECK_FALSE(error_of("\"\\x\"").empty());
  CHECK_FALSE(error_of("\"tab\there\"").empty());     // raw control characters
}

TEST_CASE("strings keep NUL bytes and UTF-8 through a round trip") {
  auto r = parse(R"("a\u0000b é 😀")");
  REQUIRE(r.ok());
  CHECK(r.value().as_string() == std::string("a\0b \xc3\xa9 \xf0\x9f\x98\x80", 11));
  CHECK(to_json(r.value()) == "\"a\\u0000b \xc3\xa9 \xf0\x9f\x98\x80\"");
}

TEST_CASE("the writer is compact and keeps member order") {
  CHECK(roundtrip(R"( { "b" : [ 1 , true , null , "x" ] , "a" : { } , "c" : [ ] } )") ==
        R"({"b":[1,true,null,"x"],"a":{},"c":[]})");
  CHECK(to_json(Value()) == "null");
  CHECK(to_json(Value(false)) == "false");
}

TEST_CASE("integers below 2^53 are written without a fraction") {
  CHECK(to_json(Value(3.0)) == "3");
  CHECK(to_json(Value(-42)) == "-42");
  CHECK(to_json(Value(-0.0)) == "0");
  CHECK(to_json(Value(12345678901.0)) == "12345678901");
  CHECK(to_json(Value(9007199254740991.0)) == "9007199254740991");
}

TEST_CASE("other numbers are written as the shortest text that reads back the same") {
  for (double d : {0.1, 1.0 / 3, 1e300, -1.5e-7, 5e-324, 9007199254740992.0, 1e21, 123456.789,
                   std::numeric_limits<double>::max()}) {
    const std::string text = to_json(Value(d));
    auto back = parse(text);
    REQUIRE(back.ok());
    CHECK(back.value().as_number() == d);
  }
  CHECK(to_json(Value(0.1)) == "0.1");
  CHECK(to_json(Value(1e300)) == "1e+300");
  CHECK(to_json(Value(2.5)) == "2.5");
}

TEST_CASE("strings are escaped: quotes, backslash and control characters") {
  std::string out;
  atrium::json::write_string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f", out);
  CHECK(out == "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
  out.clear();
  atrium::json::write_string("", out);
  CHECK(out == "\"\"");
  std::string n = "x";
  atrium::json::write_number(1.5, n);
  CHECK(n == "x1.5");
}

TEST_CASE("a parsed document written out parses back equal") {
  const char* text =
      R"({"players":{"p1":{"x":1.25,"y":-3,"name":"Zoë"},"p/2":{"x":0,"y":1e-7,"name":"\"q\""}},)"
      R"("log":["a","b",{"k":[[],{}]}],"on":false,"n":null})";
  auto first = parse(text);
  REQUIRE(first.ok());
  auto second = parse(to_json(first.value()));
  REQUIRE(second.ok());
  CHECK(first.value() == second.value());
  CHECK(to_json(first.value()) == to_json(second.value()));
}

TEST_CASE("is_valid_utf8 accepts exactly RFC 3629") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii, long enough for the 8-byte path"));
  CHECK(is_valid_utf8("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));
  CHECK(is_valid_utf8(std::string_view("\0", 1)));
  CHECK_FALSE(is_valid_utf8("\x80"));
  CHECK_FALSE(is_valid_utf8("\xc1\xbf"));             // overlong
  CHECK_FALSE(is_valid_utf8("\xe0\x9f\xbf"));         // overlong
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));         // surrogate
  CHECK_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf"));     // overlong
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));     // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(is_valid_utf8("abcdefgh\xc3"));         // truncated after the fast path
  CHECK_FALSE(is_valid_utf8("\xe2\x82\x28"));
}

// parse() keeps one RapidJSON reader per thread for texts up to 16 KiB: whatever a
// refused text left in it must not reach the next parse.
TEST_CASE("a parse after a refused one starts clean, whatever the refused text left behind") {
  const std::string big = "[\"" + std::string(20000, 'x') + "\"]";   // over the reuse size
  const char* refused[] = {"{\"a\":\"unterminated", "[1,2,{\"k\":", "{\"a\":1}x",
                           "[\"\\udc00\"]", "{\"a\":1e400}"};
  for (const char* bad : refused) {
    CAPTURE(bad);
    CHECK_FALSE(parse(bad).ok());
    CHECK(roundtrip(R"({"op":"call","args":[1,"two",{"x":3}]})") ==
          R"({"op":"call","args":[1,"two",{"x":3}]})");
    CHECK(roundtrip(big) == big);
    CHECK(roundtrip("\"after\"") == "\"after\"");
  }
}

namespace {

// Records what parse_members hands over, as "key=json" entries in order.
struct Recorder final : atrium::json::MemberSink {
  std::vector<std::string> seen;
  std::string nested_parse;  // set: each member also parses this text inside the callback
  void member(std::string_view key, Value&& value) override {
    seen.push_back(std::string(key) + "=" + to_json(value));
    if (!nested_parse.empty()) {
      auto inner = parse(nested_parse);
      seen.push_back(inner ? "inner=" + to_json(inner.value()) : "inner failed");
    }
  }
};

}  // namespace

TEST_CASE("parse_members hands over each top-level member in text order, duplicates included") {
  Recorder r;
  auto ok = atrium::json::parse_members(
      R"( {"op":"call","args":[1,{"x":[true,null]}],"op":"emit","n":-0.5} )", r);
  REQUIRE(ok.ok());
  CHECK(ok.value());
  CHECK(r.seen == std::vector<std::string>{"op=\"call\"", R"(args=[1,{"x":[true,null]}])",
                                           "op=\"emit\"", "n=-0.5"});
}

TEST_CASE("parse_members: other JSON is not an object, and bad JSON fails as parse() does") {
  for (const char* other : {"[1,2]", "\"s\"", "3", "null", "[{\"a\":1}]"}) {
    CAPTURE(other);
    Recorder r;
    auto ok = atrium::json::parse_members(other, r);
    REQUIRE(ok.ok());
    CHECK_FALSE(ok.value());
    CHECK(r.seen.empty());
  }
  for (const char* bad : {"{\"a\":1", "{\"a\":1}x", "{\"a\":1e400}", "{\"a\":\"\\udc00\"}",
                          "{\"\xff\":1}", ""}) {
    CAPTURE(bad);
    Recorder r;
    auto ok = atrium::json::parse_members(bad, r);
    REQUIRE_FALSE(ok.ok());
    CHECK(ok.error().code == ErrorCode::bad_json);
    CHECK(ok.error().message == parse(bad).error().message);
  }
  Recorder deep;
  CHECK_FALSE(atrium::json::parse_members("{\"a\":" + nested_arrays(64) + "}", deep).ok());
}

// The per-thread scratch is in use while a sink runs: a parse from inside the callback
// must get its own and leave the outer parse's stacks alone.
TEST_CASE("a parse inside a member callback does not disturb the parse that called it") {
  Recorder r;
  r.nested_parse = R"({"inner":[1,{"deep":[2,3]}]})";
  auto ok = atrium::json::parse_members(R"({"a":{"b":[1,2]},"c":[{"d":4}]})", r);
  REQUIRE(ok.ok());
  const std::string inner = R"(inner={"inner":[1,{"deep":[2,3]}]})";
  CHECK(r.seen == std::vector<std::string>{R"(a={"b":[1,2]})", inner, R"(c=[{"d":4}])", inner});
}

TEST_CASE("write_string: any bytes make a literal that parses back; valid UTF-8 comes back unchanged") {
  std::mt19937 rng(1234);
  const std::string samples[] = {"plain", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82\xac"};
  for (int round = 0; round < 20000; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      if (rng() % 3 == 0) s += samples[rng() % 4];
      else s.push_back(static_cast<char>(rng() % 256));
    }
    std::string out;
    atrium::json::write_string(s, out);
    auto back = atrium::json::parse(out);
    REQUIRE_MESSAGE(back.ok(), "not JSON: " << out);
    REQUIRE(back->is_string());
    if (atrium::json::is_valid_utf8(s)) CHECK(back->as_string() == s);
    else CHECK(back->as_string().find("\xEF\xBF\xBD") != std::string::npos);
  }
}

TEST_CASE("write_into writes what write does, or nothing past its end") {
  std::vector<Value> values;
  for (const char* text :
       {"null", "true", "false", "0", "-3", "186.07", "1e-7", "9007199254740993", "\"\"",
        "\"plain\"", "\"quote \\\" and \\\\ and \\n and \\u0001\"", "\"caf\\u00e9 \\ud83d\\ude00\"",
        "[]", "{}", "[1,[2,[3,{\"a\":null}]],\"x\"]",
        "{\"players\":{\"c1\":{\"name\":\"player 1\",\"vx\":141.42,\"vy\":-141.42,\"x\":367.64,"
        "\"y\":515.16},\"c10\":{\"name\":\"p\\\"10\",\"x\":0,\"y\":600}},\"w\":800}"}) {
    auto r = parse(text);
    REQUIRE(r.ok());
    values.push_back(std::move(r).value());
  }
  values.push_back(Value(std::string("bad \xff byte")));  // written as U+FFFD, as write() does
  for (const Value& v : values) {
    const std::string want = to_json(v);
    std::string buf(want.size() + 8, '#');
    char* end = atrium::json::write_into(v, buf.data(), buf.data() + buf.size());
    REQUIRE(end != nullptr);
    CHECK(std::string(buf.data(), end) == want);
    for (std::size_t room = 0; room < want.size(); ++room) {  // every room too small fails
      std::string small(room + 1, '#');
      CHECK(atrium::json::write_into(v, small.data(), small.data() + room) == nullptr);
      CHECK(small[room] == '#');                               // and writes nothing past it
    }
  }
}
