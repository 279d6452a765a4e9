// Where a frame is parsed: client messages -> Request, and every server frame of
// docs/protocol.md encoded as one JSON line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json/value.hpp"
#include "util/result.hpp"
#include "util/shared_frame.hpp"

namespace atrium::engine {

enum class Op { join, leave, call, emit, sync, resume, ping, watch, unwatch, auth };

// One room of a `resume` (docs/protocol.md "Seats and resume"): the last seq the client
// applied and that seq's epoch ("" when the older {id: seq} form gave none).
struct ResumePoint {
  std::string room;
  std::uint64_t seq = 0;
  std::string epoch;
};

struct Request {
  Op op = Op::ping;
  json::Value ref;          // number or string; null when the request carried none
  bool has_ref = false;
  std::string room;
  std::string name;         // call: method; emit: event
  json::Value body;         // join: payload (object); call: args (array); emit: data
  std::string token;        // watch: the admin token, when the server has one; auth: a JWT
  std::string session;      // resume: the old connection's welcome.session
  std::vector<ResumePoint> resume;  // resume: its rooms, in the order given
};

// The most rooms one `resume` may list (a connection may be in at most
// EngineConfig::max_rooms_per_connection; this only bounds the parse).
inline constexpr std::size_t kMaxResumeRooms = 4096;

// Room ids (docs/protocol.md "Ids"): 1..128 bytes of [A-Za-z0-9_.:@-], split at the first ':'
// into TYPE and INSTANCE, neither empty. An id without ':' is valid and untyped.
Status validate_room_id(std::string_view id);
// A room TYPE, the file name of its script without ".lua": 1..64 of [A-Za-z0-9_.@-] (an
// id's characters but ':'). One rule for the loader, `atrium check` and `atrium new`.
bool is_type_char(char c);
bool valid_type_name(std::string_view name);
// TYPE of a valid id, or "" when it has no ':'.
std::string_view room_type_of(std::string_view id);

// A client message's text -> Request: bad_json when it is not JSON, then bad_request or
// unknown_op. On failure `ref_out` receives the request's ref when it had a valid one, so
// the error can go back as a failed reply.
Result<Request> parse_request(std::string_view text, json::Value& ref_out, bool& has_ref_out);

// Server frames (one JSON object each, no newline).
std::string encode_welcome(std::string_view session, std::string_view client,
                           std::string_view user_id, std::string_view server, int heartbeat_ms);
std::string encode_reply_ok(const json::Value& ref, const json::Value* result);
// Appends "error":{"code","message"} and, for a script's error, "where" (docs/protocol.md
// "Error codes"): the one shape of an error in frames and HTTP bodies alike.
void write_error_object(const Error& error, std::string& out);
std::string encode_reply_error(const json::Value& ref, const Error& error);
std::string encode_error(const Error& error);
// An error frame about one room: a join on connect that failed ({"op":"error","room",...}).
std::string encode_room_error(std::string_view room, const Error& error);
// To a room's watchers: a call into its script failed (docs/protocol.md "Watching a room").
std::string encode_fault(std::string_view room, std::string_view in, const Error& error,
                         std::string_view traceback);
std::string encode_event(std::string_view room, std::string_view event, const json::Value& data,
                         std::string_view from);
// The same line as a frame to fan out: encoded in a buffer kept for the next one, so a
// broadcast allocates only its shared frame.
SharedFrame encode_event_frame(std::string_view room, std::string_view event,
                               const json::Value& data, std::string_view from);
// `ops` is comma-separated op objects (state::write_ops output).
std::string encode_patch(std::string_view room, std::uint64_t seq, std::string_view ops);
// op is "state" or "joined".
std::string encode_state(std::string_view op, std::string_view room, std::string_view epoch,
                         std::uint64_t seq, const json::Value& state);
std::string encode_left(std::string_view room, std::string_view reason, std::string_view message);
// The reply to join/sync/watch, written straight from the room's mirror (no copy of the
// state): {"op":"reply","ref":..,"ok":true,"result":{"room","epoch","seq","state"}}.
std::string encode_reply_state(const json::Value& ref, std::string_view room,
                               std::string_view epoch, std::uint64_t seq, const json::Value& state);

}  // namespace atrium::engine
