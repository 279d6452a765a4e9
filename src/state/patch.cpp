// RFC 6902 ops: written as JSON for patch frames, and applied to keep a mirror current.
#include "state/op.hpp"

#include <cstring>
#include <string_view>
#include <memory>

#include "json/codec.hpp"

namespace atrium::state {

namespace {

const char* name_of(OpKind kind) noexcept {
  switch (kind) {
    case OpKind::add: return "add";
    case OpKind::remove: return "remove";
    case OpKind::replace: return "replace";
  }
  return "add";
}

// Reads the token after the '/' at `pos` (RFC 6901 unescaped) and leaves `pos` on the next
// '/' or the end. The token is a view into `path`, or into `scratch` when it holds an
// escape (rare in keys: most ops cost no copy of their path). False on a bad escape.
bool next_token(std::string_view path, std::size_t& pos, std::string& scratch,
                std::string_view& token) {
  const std::size_t start = ++pos;
  bool escaped = false;                             // tokens are short: one pass, no memchr
  for (; pos < path.size() && path[pos] != '/'; ++pos) escaped |= path[pos] == '~';
  token = path.substr(start, pos - start);
  if (!escaped) return true;
  scratch.clear();
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] != '~') {
      scratch.push_back(token[i]);
      continue;
    }
    if (i + 1 == token.size()) return false;
    const char e = token[++i];
    if (e != '0' && e != '1') return false;
    scratch.push_back(e == '0' ? '~' : '/');
  }
  token = scratch;
  return true;
}

// RFC 6901 array index: "0" or digits without a leading zero.
bool parse_index(std::string_view token, std::size_t& out) noexcept {
  if (token.empty() || token.size() > 15) return false;
  if (token.size() > 1 && token[0] == '0') return false;
  std::size_t n = 0;
  for (const char c : token) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  out = n;
  return true;
}

Status op_error(std::size_t n, const Op& op, const char* why) {
  return make_error(ErrorCode::bad_request, "patch op " + std::to_string(n) + " (" +
                                                name_of(op.kind) + " " + op.path + "): " + why);
}

// Applies `op` to the container `parent` at its last token.
const char* apply_at(json::Value& parent, std::string_view token, const Op& op) {
  if (parent.is_object()) {
    switch (op.kind) {
      case OpKind::add: parent.set(token, op.value); return nullptr;
      case OpKind::replace: {
        json::Value* target = parent.find(token);
        if (!target) return "no such member";
        *target = op.value;
        return nullptr;
      }
      case OpKind::remove: return parent.erase(token) ? nullptr : "no such member";
    }
  }
  if (!parent.is_array()) return "path goes through a scalar";
  auto& items = parent.items();
  std::size_t i = 0;
  if (op.kind == OpKind::add && token == "-") {
    i = items.size();                               // RFC 6902 4.1: "-" is the end
  } else if (!parse_index(token, i)) {
    return "bad array index";
  }
  const bool in_range = op.kind == OpKind::add ? i <= items.size() : i < items.size();
  if (!in_range) return "array index out of range";
  const auto at = items.begin() + static_cast<std::ptrdiff_t>(i);
  switch (op.kind) {
    case OpKind::add: items.insert(at, op.value); break;
    case OpKind::replace: *at = op.value; break;
    case OpKind::remove: items.erase(at); break;
  }
  return nullptr;
}

}  // namespace

namespace {

// The op into [p, end): the end of what was written, or nullptr when it does not fit.
char* write_op_into(const Op& op, char* p, char* end) {
  const std::string_view name = name_of(op.kind);
  constexpr std::string_view kHead = "{\"op\":\"", kPath = "\",\"path\":", kValue = ",\"value\":";
  if (end - p < 32) return nullptr;                 // the head, 29 bytes at most
  std::memcpy(p, kHead.data(), kHead.size());
  p += kHead.size();
  std::memcpy(p, name.data(), name.size());
  p += name.size();
  std::memcpy(p, kPath.data(), kPath.size());
  p += kPath.size();
  if (!(p = json::write_string_into(op.path, p, end))) return nullptr;
  if (op.kind != OpKind::remove) {
    if (end - p <= static_cast<std::ptrdiff_t>(kValue.size())) return nullptr;
    std::memcpy(p, kValue.data(), kValue.size());
    if (!(p = json::write_into(op.value, p + kValue.size(), end))) return nullptr;
  }
  if (p == end) return nullptr;
  *p++ = '}';
  return p;
}

}  // namespace

// Written in one piece, not appended piece by piece: most ops (a path and a number) from
// a buffer on the stack, those up to some kilobytes (a replaced object of players) from
// one the thread keeps, and a larger one the long way.
void write_op(const Op& op, std::string& out) {
  if (op.kind == OpKind::remove || (!op.value.is_object() && !op.value.is_array())) {
    char buf[256];
    if (char* e = write_op_into(op, buf, buf + sizeof buf)) {
      out.append(buf, static_cast<std::size_t>(e - buf));
      return;
    }
  }
  constexpr std::size_t kRoom = 8192;
  thread_local std::unique_ptr<char[]> room(new char[kRoom]);
  if (char* e = write_op_into(op, room.get(), room.get() + kRoom)) {
    out.append(room.get(), static_cast<std::size_t>(e - room.get()));
    return;
  }
  out.append("{\"op\":\"");
  out.append(name_of(op.kind));
  out.append("\",\"path\":");
  json::write_string(op.path, out);
  if (op.kind != OpKind::remove) {
    out.append(",\"value\":");
    json::write(op.value, out);
  }
  out.push_back('}');
}

void write_ops(const std::vector<Op>& ops, std::string& out) {
  bool first = true;
  for (const Op& op : ops) {
    if (!first) out.push_back(',');
    first = false;
    write_op(op, out);
  }
}

// The diff emits the ops under one object in a row (a player's x, then its y): an op whose
// parent is the last op's parent finds it without descending again. That parent is still
// where it was: the last op changed one of its members, not it or anything above it.
Status apply_patch(json::Value& doc, const std::vector<Op>& ops) {
  std::string scratch;
  std::string_view token;
  std::string_view last_parent_path;               // the last op's path up to its last '/'
  json::Value* last_parent = nullptr;
  for (std::size_t n = 0; n < ops.size(); ++n) {
    const Op& op = ops[n];
    const std::string_view path = op.path;
    if (path.empty()) {                             // the whole document
      if (op.kind == OpKind::remove) return op_error(n, op, "cannot remove the root");
      doc = op.value;
      last_parent = nullptr;
      continue;
    }
    if (path.front() != '/') return op_error(n, op, "path must start with '/'");
    const std::size_t cut = path.rfind('/');
    if (last_parent && path.substr(0, cut) == last_parent_path) {
      std::size_t pos = cut;
      if (!next_token(path, pos, scratch, token)) return op_error(n, op, "bad escape in path");
      if (const char* why = apply_at(*last_parent, token, op)) return op_error(n, op, why);
      continue;
    }
    json::Value* parent = &doc;
    std::size_t pos = 0;
    if (!next_token(path, pos, scratch, token)) return op_error(n, op, "bad escape in path");
    while (pos < path.size()) {                     // descend through all but the last token
      json::Value* child = nullptr;
      std::size_t i = 0;
      if (parent->is_object()) {
        child = parent->find(token);
      } else if (parent->is_array() && parse_index(token, i) && i < parent->size()) {
        child = &parent->items()[i];
      }
      if (!child) return op_error(n, op, "path does not resolve");
      parent = child;
      if (!next_token(path, pos, scratch, token)) return op_error(n, op, "bad escape in path");
    }
    if (const char* why = apply_at(*parent, token, op)) return op_error(n, op, why);
    last_parent_path = path.substr(0, cut);
    last_parent = parent;
  }
  return {};
}

}  // namespace atrium::state
