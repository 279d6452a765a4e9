// MessagePack <-> JSON for the subprotocol atrium.v1.msgpack (docs/protocol.md
// "MessagePack"): the same objects as atrium.v1, each encoded as one MessagePack value. The
// engine speaks JSON only; a connection that asked for MessagePack gets each frame
// transcoded once (every member of a broadcast shares the bytes) and its input transcoded
// back to JSON text. Encoding and parsing are msgpack-cxx's (Debian libmsgpack-cxx-dev).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "json/value.hpp"
#include "util/result.hpp"

namespace atrium::json {

// Appends `v` as one MessagePack value: objects as maps (keys in order), arrays, strings
// (str), true/false/nil, and numbers as the smallest integer that holds them when they are
// whole and within 2^63, else as float32 when that is exact, else float64.
void write_msgpack(const Value& v, std::string& out);

// One JSON text (an engine frame) as one MessagePack value appended to `out`. Errors: the
// JSON's (bad_json). Nesting up to kMaxDepth + 8: a frame around a state kMaxDepth deep.
Status json_to_msgpack(std::string_view json_text, std::string& out);

// The MessagePack values back to back in `bytes` (one binary WebSocket message) as JSON
// texts, one per value, appended to `out`. Refused (bad_request, saying where) when a value
// is cut short, nests deeper than kMaxDepth, has a map key that is not a string, a string
// that is not UTF-8, a float that is not finite, or bin/ext data (no JSON has them).
// Nothing is appended on error.
Status msgpack_to_json(std::string_view bytes, std::vector<std::string>& out);

}  // namespace atrium::json
