// libFuzzer target: json::parse on any bytes. What it accepts must survive
// to_json -> parse unchanged, and writing is a fixed point: to_json(parse(to_json(v)))
// == to_json(v). parse_members must agree with parse on what is an object.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "json/codec.hpp"

using namespace atrium;

namespace {

struct CountMembers final : json::MemberSink {
  std::size_t n = 0;
  void member(std::string_view, json::Value&&) override { ++n; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  Result<json::Value> parsed = json::parse(text);

  CountMembers sink;
  Result<bool> members = json::parse_members(text, sink);
  FUZZ_CHECK(members.ok() == parsed.ok(), "parse and parse_members disagree on: %s",
             fuzz::head(text).c_str());
  if (!parsed) return 0;
  FUZZ_CHECK(members.value() == parsed->is_object(), "input: %s", fuzz::head(text).c_str());

  const std::string once = json::to_json(parsed.value());
  Result<json::Value> again = json::parse(once);
  FUZZ_CHECK(again.ok(), "to_json wrote what parse refuses: %s -> %s", fuzz::head(text).c_str(),
             fuzz::head(once).c_str());
  FUZZ_CHECK(again.value() == parsed.value(), "round trip changed the value: %s -> %s",
             fuzz::head(text).c_str(), fuzz::head(once).c_str());
  const std::string twice = json::to_json(again.value());
  FUZZ_CHECK(twice == once, "writing is not a fixed point: %s -> %s", fuzz::head(once).c_str(),
             fuzz::head(twice).c_str());
  return 0;
}
