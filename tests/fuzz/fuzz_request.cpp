// libFuzzer target: a client message -> engine::Request (engine::parse_request, the pure
// parser every WebSocket frame goes through). Checks, for whatever it accepts: the ref is
// a number or a string, and the replies the engine would write for it are JSON.
#include <cstddef>
#include <cstdint>

#include "engine/protocol.hpp"
#include "fuzz_common.hpp"
#include "json/codec.hpp"

using namespace atrium;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  json::Value ref;
  bool has_ref = false;
  Result<engine::Request> parsed = engine::parse_request(text, ref, has_ref);
  if (has_ref) FUZZ_CHECK(ref.is_number() || ref.is_string(), "input: %s", fuzz::head(text).c_str());
  if (!parsed) {
    // The failed reply goes back with the ref: it must be one JSON object.
    const std::string reply = engine::encode_reply_error(has_ref ? ref : json::Value(), parsed.error());
    FUZZ_CHECK(json::parse(reply).ok(), "reply: %s", fuzz::head(reply).c_str());
    return 0;
  }
  const engine::Request& r = parsed.value();
  if (r.has_ref) FUZZ_CHECK(r.ref.is_number() || r.ref.is_string(), "input: %s", fuzz::head(text).c_str());
  const std::string reply = engine::encode_reply_ok(r.ref, &r.body);
  FUZZ_CHECK(json::parse(reply).ok(), "reply: %s", fuzz::head(reply).c_str());
  if (!r.room.empty() && engine::validate_room_id(r.room).ok()) (void)engine::room_type_of(r.room);
  const std::string event = engine::encode_event(r.room, r.name, r.body, "c1");
  FUZZ_CHECK(json::parse(event).ok(), "event: %s", fuzz::head(event).c_str());
  return 0;
}
