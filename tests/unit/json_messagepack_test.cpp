// json/messagepack.hpp: JSON values to MessagePack and back, and what MessagePack the
// server refuses to read as a request.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "json/codec.hpp"
#include "json/messagepack.hpp"

using atrium::json::Value;

namespace {

Value parse(const std::string& text) {
  auto v = atrium::json::parse(text);
  REQUIRE(v);
  return std::move(*v);
}

// `v` through MessagePack and back.
Value round_trip(const Value& v) {
  std::string bytes;
  atrium::json::write_msgpack(v, bytes);
  std::vector<std::string> texts;
  const atrium::Status s = atrium::json::msgpack_to_json(bytes, texts);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  REQUIRE(texts.size() == 1);
  return parse(texts[0]);
}

std::string bytes_of(std::initializer_list<int> b) {
  std::string out;
  for (int c : b) out.push_back(static_cast<char>(c));
  return out;
}

}  // namespace

TEST_CASE("msgpack: numbers take the smallest exact form, and come back the same") {
  struct Case {
    double n;
    std::size_t bytes;
  } cases[] = {{0, 1}, {127, 1}, {-32, 1}, {128, 2}, {-33, 2}, {65535, 3}, {4294967296.0, 9},
               {0.5, 5}, {0.1, 9}, {-1e300, 9}, {9007199254740993.0, 9},
               {9223372036854775808.0, 9}, {18446744073709551616.0, 9}, {-9223372036854775808.0, 9},
               {36893488147419103232.0, 5}};   // 2^63 (uint64), 2^64 (float64: a library edge), 2^65
  for (const Case& c : cases) {
    std::string out;
    atrium::json::write_msgpack(Value(c.n), out);
    CHECK_MESSAGE(out.size() == c.bytes, c.n);
    CHECK(round_trip(Value(c.n)) == Value(c.n));
  }
}

TEST_CASE("msgpack: objects keep their key order; several values back to back are several texts") {
  const Value v = parse(R"({"z":1,"a":[true,false,null,"é",{"k":"v"}],"m":{}})");
  std::string bytes;
  atrium::json::write_msgpack(v, bytes);
  atrium::json::write_msgpack(parse("[]"), bytes);
  CHECK(atrium::json::json_to_msgpack(R"({"op":"ping"})", bytes).ok());
  std::vector<std::string> texts;
  REQUIRE(atrium::json::msgpack_to_json(bytes, texts).ok());
  REQUIRE(texts.size() == 3);
  CHECK(texts[0] == R"({"z":1,"a":[true,false,null,"é",{"k":"v"}],"m":{}})");
  CHECK(texts[1] == "[]");
  CHECK(texts[2] == R"({"op":"ping"})");
  CHECK(!atrium::json::json_to_msgpack("{oops", bytes).ok());
  // A frame around a state nested as deep as a script may make it still converts.
  std::string deep = "{\"op\":\"patch\",\"ops\":[{\"value\":" + std::string(64, '[') + std::string(64, ']') + "}]}";
  CHECK(atrium::json::json_to_msgpack(deep, bytes).ok());
}

TEST_CASE("msgpack: what has no JSON form, or is cut short, is refused and adds nothing") {
  const std::string refused[] = {
      bytes_of({0xc1}),                                       // a byte never used
      bytes_of({0xdd, 0xff, 0xff, 0xff, 0xff}),               // 4 billion items announced, none there
      bytes_of({0x81, 0x01, 0xa1, 0x61}),                     // {1: "a"}
      bytes_of({0x81, 0x91, 0xc0, 0xc0}),                     // {[nil]: nil}
      bytes_of({0xc4, 0x02, 0x01, 0x02}),                     // bin
      bytes_of({0xd4, 0x01, 0x00}),                           // fixext
      bytes_of({0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}),         // +Inf
      bytes_of({0xa2, 0xff, 0xfe}),                           // not UTF-8
      bytes_of({0xa5, 0x61}),                                 // a string cut short
  };
  for (const std::string& b : refused) {
    std::vector<std::string> texts = {"kept"};
    const atrium::Status s = atrium::json::msgpack_to_json(b, texts);
    CHECK_FALSE(s.ok());
    CHECK(texts == std::vector<std::string>{"kept"});
  }
  std::string deep(70, static_cast<char>(0x91));
  deep.push_back(static_cast<char>(0xc0));
  std::vector<std::string> texts;
  const atrium::Status s = atrium::json::msgpack_to_json(deep, texts);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("deeper than 64") != std::string::npos);
  std::string ok_deep(60, static_cast<char>(0x91));
  ok_deep.push_back(static_cast<char>(0xc0));
  CHECK(atrium::json::msgpack_to_json(ok_deep, texts).ok());
}

// Random JSON values through MessagePack and back: equal every time.
TEST_CASE("msgpack: random values come back equal") {
  std::uint64_t seed = 0x853c49e6748fea9bull;
  auto next = [&seed](std::uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  std::function<Value(int)> make = [&](int depth) -> Value {
    switch (depth > 4 ? next(4) : next(7)) {
      case 0: return Value();
      case 1: return Value(next(2) == 0);
      case 2: {
        const double kinds[] = {double(next(1000)) - 500, double(next(1u << 31)) * 4096.0, next(1000) / 7.0,
                                -0.25, 1e21, 123456789.125};
        return Value(kinds[next(6)]);
      }
      case 3: return Value(std::string(next(40), static_cast<char>('a' + next(26))) + (next(3) ? "" : "é"));
      case 4:
      case 5: {
        Value a = Value::array();
        for (std::uint64_t i = 0, n = next(6); i < n; ++i) a.push_back(make(depth + 1));
        return a;
      }
      default: {
        Value o = Value::object();
        for (std::uint64_t i = 0, n = next(6); i < n; ++i) o.set("k" + std::to_string(next(20)), make(depth + 1));
        return o;
      }
    }
  };
  for (int i = 0; i < 2000; ++i) {
    const Value v = make(0);
    REQUIRE_MESSAGE(round_trip(v) == v, atrium::json::to_json(v));
  }
}
