#include "engine/protocol.hpp"

#include <algorithm>

#include "json/codec.hpp"

namespace atrium::engine {

namespace {

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
}

Error bad(std::string message) { return make_error(ErrorCode::bad_request, std::move(message)); }

// The members of a request that mean something, read straight from the text
// (json::parse_members): no object is built for the envelope. A key given twice: the
// last one wins, as in a parsed object. Absent and null are the same to every field.
struct Envelope final : json::MemberSink {
  json::Value op, ref, room, method, event, data, args, payload, token, session, rooms;

  void member(std::string_view key, json::Value&& value) override {
    if (json::Value* field = field_named(key)) *field = std::move(value);
  }

 private:
  json::Value* field_named(std::string_view key) noexcept {
    switch (key.size()) {
      case 2: return key == "op" ? &op : nullptr;
      case 3: return key == "ref" ? &ref : nullptr;
      case 4: return key == "room" ? &room : key == "data" ? &data : key == "args" ? &args : nullptr;
      case 5: return key == "event" ? &event : key == "token" ? &token : key == "rooms" ? &rooms : nullptr;
      case 6: return key == "method" ? &method : nullptr;
      case 7: return key == "payload" ? &payload : key == "session" ? &session : nullptr;
      default: return nullptr;
    }
  }
};

// Optional string field: absent is fine, present must be a string.
Status take_string(const json::Value& v, std::string_view key, std::string& out, bool required) {
  if (v.is_null()) {
    if (required) return bad("'" + std::string(key) + "' is required");
    return {};
  }
  if (!v.is_string()) return bad("'" + std::string(key) + "' must be a string");
  out = v.as_string();
  return {};
}

Status take_room(const json::Value& v, std::string& out) {
  if (Status s = take_string(v, "room", out, true); !s) return s;
  return validate_room_id(out);
}

// A seq on the wire: a whole number from 0 to 2^53 (what a JSON number holds exactly).
bool take_seq(const json::Value& v, std::uint64_t& out) {
  if (!v.is_number()) return false;
  const double d = v.as_number();
  if (!(d >= 0 && d <= 9007199254740992.0) || d != static_cast<double>(static_cast<std::uint64_t>(d)))
    return false;
  out = static_cast<std::uint64_t>(d);
  return true;
}

// resume's rooms: {ID: {"seq": N, "epoch": E}} or the older {ID: N}.
Status take_resume_rooms(const json::Value& v, std::vector<ResumePoint>& out) {
  if (v.is_null()) return {};
  if (!v.is_object()) return bad("'rooms' must be an object of room ids");
  if (v.size() > kMaxResumeRooms)
    return bad("'rooms' lists " + std::to_string(v.size()) + " rooms, more than " +
               std::to_string(kMaxResumeRooms));
  for (const auto& [id, point] : v.members()) {
    ResumePoint p;
    p.room = id;
    if (Status s = validate_room_id(p.room); !s) return s;
    const json::Value* seq = point.is_object() ? point.find("seq") : &point;
    if (!seq || !take_seq(*seq, p.seq))
      return bad("rooms['" + id + "'] must be {\"seq\": N, \"epoch\": E} with N a whole number >= 0");
    if (point.is_object()) {
      const json::Value* epoch = point.find("epoch");
      if (epoch && !epoch->is_null()) {
        if (!epoch->is_string()) return bad("rooms['" + id + "'].epoch must be a string");
        p.epoch = epoch->as_string();
      }
    }
    out.push_back(std::move(p));
  }
  return {};
}

void open_frame(std::string& out, std::string_view op) {
  out += "{\"op\":";
  json::write_string(op, out);
}

}  // namespace

Status validate_room_id(std::string_view id) {
  static const char* kShape = "room must be 1..128 bytes of [A-Za-z0-9_.:@-], as TYPE:INSTANCE or NAME";
  if (id.empty() || id.size() > 128) return bad(kShape);
  for (char c : id)
    if (!is_id_char(c)) return bad(kShape);
  const auto colon = id.find(':');
  if (colon != std::string_view::npos && (colon == 0 || colon + 1 == id.size()))
    return bad("room TYPE and INSTANCE must not be empty");
  return {};
}

bool is_type_char(char c) { return c != ':' && is_id_char(c); }

bool valid_type_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), is_type_char);
}

std::string_view room_type_of(std::string_view id) {
  const auto colon = id.find(':');
  return colon == std::string_view::npos ? std::string_view{} : id.substr(0, colon);
}

Result<Request> parse_request(std::string_view text, json::Value& ref_out, bool& has_ref_out) {
  has_ref_out = false;
  Envelope msg;
  Result<bool> is_object = json::parse_members(text, msg);
  if (!is_object) return is_object.error();
  if (!is_object.value()) return bad("a message must be a JSON object");
  if (!msg.ref.is_null()) {
    if (!msg.ref.is_number() && !msg.ref.is_string()) return bad("'ref' must be a number or a string");
    ref_out = msg.ref;
    has_ref_out = true;
  }
  Request req;
  req.ref = std::move(msg.ref);
  req.has_ref = has_ref_out;
  std::string op;
  if (Status s = take_string(msg.op, "op", op, true); !s) return s.error();

  if (op == "ping") {
    req.op = Op::ping;
  } else if (op == "join" || op == "leave" || op == "sync") {
    req.op = op == "join" ? Op::join : op == "leave" ? Op::leave : Op::sync;
    if (Status s = take_room(msg.room, req.room); !s) return s.error();
    if (req.op == Op::join) {
      if (!msg.payload.is_null() && !msg.payload.is_object()) return bad("'payload' must be an object");
      req.body = msg.payload.is_object() ? std::move(msg.payload) : json::Value::object();
    }
  } else if (op == "call") {
    req.op = Op::call;
    if (Status s = take_room(msg.room, req.room); !s) return s.error();
    if (Status s = take_string(msg.method, "method", req.name, true); !s) return s.error();
    if (!msg.args.is_null() && !msg.args.is_array()) return bad("'args' must be an array");
    req.body = msg.args.is_array() ? std::move(msg.args) : json::Value::array();
  } else if (op == "emit") {
    req.op = Op::emit;
    if (Status s = take_room(msg.room, req.room); !s) return s.error();
    if (Status s = take_string(msg.event, "event", req.name, true); !s) return s.error();
    if (req.name.empty()) return bad("'event' must not be empty");
    req.body = std::move(msg.data);
  } else if (op == "watch" || op == "unwatch") {
    // An addition to protocol v1: the inspector's way to follow a room without joining it
    // (docs/protocol.md "Watching a room").
    req.op = op == "watch" ? Op::watch : Op::unwatch;
    if (Status s = take_room(msg.room, req.room); !s) return s.error();
    if (Status s = take_string(msg.token, "token", req.token, false); !s) return s.error();
  } else if (op == "auth") {  // a fresh token before the connection's runs out
    req.op = Op::auth;
    if (Status s = take_string(msg.token, "token", req.token, true); !s) return s.error();
  } else if (op == "resume") {
    req.op = Op::resume;
    if (Status s = take_string(msg.session, "session", req.session, true); !s) return s.error();
    if (Status s = take_resume_rooms(msg.rooms, req.resume); !s) return s.error();
  } else {
    return make_error(ErrorCode::unknown_op, "unknown op '" + op + "'");
  }
  return req;
}

std::string encode_welcome(std::string_view session, std::string_view client,
                           std::string_view user_id, std::string_view server, int heartbeat_ms) {
  std::string out;
  open_frame(out, "welcome");
  out += ",\"session\":";
  json::write_string(session, out);
  out += ",\"client\":";
  json::write_string(client, out);
  if (!user_id.empty()) {
    out += ",\"userId\":";
    json::write_string(user_id, out);
  }
  out += ",\"server\":";
  json::write_string(server, out);
  out += ",\"heartbeat\":";
  json::write_number(heartbeat_ms, out);
  out += '}';
  return out;
}

std::string encode_reply_ok(const json::Value& ref, const json::Value* result) {
  std::string out;
  open_frame(out, "reply");
  out += ",\"ref\":";
  json::write(ref, out);
  out += ",\"ok\":true";
  if (result) {
    out += ",\"result\":";
    json::write(*result, out);
  }
  out += '}';
  return out;
}

void write_error_object(const Error& error, std::string& out) {
  out += "\"error\":{\"code\":";
  json::write_string(error.wire_code(), out);
  out += ",\"message\":";
  json::write_string(error.message, out);
  if (!error.where.empty()) {
    out += ",\"where\":";
    json::write_string(error.where, out);
  }
  out += '}';
}

std::string encode_reply_error(const json::Value& ref, const Error& error) {
  std::string out;
  open_frame(out, "reply");
  out += ",\"ref\":";
  json::write(ref, out);
  out += ",\"ok\":false,";
  write_error_object(error, out);
  out += '}';
  return out;
}

std::string encode_error(const Error& error) {
  std::string out;
  open_frame(out, "error");
  out += ',';
  write_error_object(error, out);
  out += '}';
  return out;
}

std::string encode_room_error(std::string_view room, const Error& error) {
  std::string out;
  open_frame(out, "error");
  out += ",\"room\":";
  json::write_string(room, out);
  out += ',';
  write_error_object(error, out);
  out += '}';
  return out;
}

std::string encode_fault(std::string_view room, std::string_view in, const Error& error,
                         std::string_view traceback) {
  std::string out;
  open_frame(out, "fault");
  out += ",\"room\":";
  json::write_string(room, out);
  out += ",\"in\":";
  json::write_string(in, out);
  out += ',';
  write_error_object(error, out);
  out += ",\"traceback\":";
  json::write_string(traceback, out);
  out += '}';
  return out;
}

namespace {

void write_event(std::string& out, std::string_view room, std::string_view event,
                 const json::Value& data, std::string_view from) {
  // One allocation for the usual event (string data, few escapes) instead of a regrowth
  // per field.
  out.reserve(64 + room.size() + event.size() + from.size() +
              (data.is_string() ? data.as_string().size() : 64));
  open_frame(out, "event");
  out += ",\"room\":";
  json::write_string(room, out);
  out += ",\"event\":";
  json::write_string(event, out);
  out += ",\"data\":";
  json::write(data, out);
  if (!from.empty()) {
    out += ",\"from\":";
    json::write_string(from, out);
  }
  out += '}';
}

}  // namespace

std::string encode_event(std::string_view room, std::string_view event, const json::Value& data,
                         std::string_view from) {
  std::string out;
  write_event(out, room, event, data, from);
  return out;
}

SharedFrame encode_event_frame(std::string_view room, std::string_view event,
                               const json::Value& data, std::string_view from) {
  constexpr std::size_t kKeepBytes = 64 * 1024;  // a rare huge event does not stay resident
  thread_local std::string line;
  line.clear();
  write_event(line, room, event, data, from);
  SharedFrame frame(line);
  if (line.capacity() > kKeepBytes) std::string().swap(line);
  return frame;
}

std::string encode_patch(std::string_view room, std::uint64_t seq, std::string_view ops) {
  std::string out;
  out.reserve(48 + room.size() + ops.size());
  open_frame(out, "patch");
  out += ",\"room\":";
  json::write_string(room, out);
  out += ",\"seq\":";
  json::write_number(static_cast<double>(seq), out);
  out += ",\"ops\":[";
  out += ops;
  out += "]}";
  return out;
}

std::string encode_state(std::string_view op, std::string_view room, std::string_view epoch,
                         std::uint64_t seq, const json::Value& state) {
  std::string out;
  open_frame(out, op);
  out += ",\"room\":";
  json::write_string(room, out);
  out += ",\"epoch\":";
  json::write_string(epoch, out);
  out += ",\"seq\":";
  json::write_number(static_cast<double>(seq), out);
  out += ",\"state\":";
  json::write(state, out);
  out += '}';
  return out;
}

std::string encode_left(std::string_view room, std::string_view reason, std::string_view message) {
  std::string out;
  open_frame(out, "left");
  out += ",\"room\":";
  json::write_string(room, out);
  out += ",\"reason\":";
  json::write_string(reason, out);
  if (!message.empty()) {
    out += ",\"message\":";
    json::write_string(message, out);
  }
  out += '}';
  return out;
}

std::string encode_reply_state(const json::Value& ref, std::string_view room,
                               std::string_view epoch, std::uint64_t seq, const json::Value& state) {
  std::string out;
  open_frame(out, "reply");
  out += ",\"ref\":";
  json::write(ref, out);
  out += ",\"ok\":true,\"result\":{\"room\":";
  json::write_string(room, out);
  out += ",\"epoch\":";
  json::write_string(epoch, out);
  out += ",\"seq\":";
  json::write_number(static_cast<double>(seq), out);
  out += ",\"state\":";
  json::write(state, out);
  out += "}}";
  return out;
}

}  // namespace atrium::engine
