// libFuzzer target: json::msgpack_to_json (what a client of atrium.v1.msgpack sends) on any
// bytes. Every text it gives is JSON that parse() accepts; the values parsed, written back as
// MessagePack and read again parse to the same values (texts may differ where a map named
// a key twice, which JSON text keeps and a parsed value does not); on refusal nothing is
// added.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "json/codec.hpp"
#include "json/messagepack.hpp"

using namespace atrium;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::as_text(data, size);
  std::vector<std::string> texts = {"kept"};
  const Status s = json::msgpack_to_json(bytes, texts);
  if (!s) {
    FUZZ_CHECK(texts.size() == 1 && texts[0] == "kept", "a refusal added texts");
    return 0;
  }
  std::string again_bytes;
  std::vector<json::Value> values;
  for (std::size_t i = 1; i < texts.size(); ++i) {
    Result<json::Value> v = json::parse(texts[i]);
    FUZZ_CHECK(v.ok(), "not JSON: %s", fuzz::head(texts[i]).c_str());
    json::write_msgpack(v.value(), again_bytes);
    values.push_back(std::move(v).value());
  }
  std::vector<std::string> again;
  FUZZ_CHECK(json::msgpack_to_json(again_bytes, again).ok(), "our own MessagePack refused");
  FUZZ_CHECK(again.size() == values.size(), "value count changed");
  for (std::size_t i = 0; i < again.size(); ++i) {
    Result<json::Value> v = json::parse(again[i]);
    FUZZ_CHECK(v.ok() && v.value() == values[i], "round trip changed %s -> %s", fuzz::head(texts[i + 1]).c_str(),
               fuzz::head(again[i]).c_str());
  }
  return 0;
}
