// Where a patch is built: one pass over a room's Lua state table against its mirror,
// descending only where both sides hold tables of the same kind, so it ends even on a
// cyclic table. Whatever differs is converted with script::to_value_at, which enforces
// the State rules exactly there; what is equal to the mirror is valid by construction.
#include "state/diff.hpp"

#include <lua.hpp>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <span>

#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "state/json_pointer.hpp"

namespace atrium::state {

namespace {

using json::Value;

// After the first item agrees, a candidate array shift is checked item by item; this
// many failed candidates and the array is diffed pairwise instead (bounds the work on
// arrays of repeated items).
constexpr int kMaxShiftTries = 8;

// One step from the root to where the differ stands. Keys point into a Lua string on
// the stack, the mirror, or the frame that formatted an integer key: all outlive it.
struct Seg {
  enum class Kind : unsigned char { key, number_key, item };
  std::string_view key;
  std::size_t index;
  Kind kind;
};

// ---- encoded sizes: what compact() weighs, estimated without encoding ------------------

// Bytes of an op around its path and value, by OpKind (add, remove, replace):
// {"op":"add","path":"","value":} and so on.
constexpr std::size_t kOpBytes[] = {31, 25, 35};

// Per byte: 1 where string_size counts an escape ('"', '\\', control characters), and
// bit 1 where a JSON Pointer escapes it ('~', '/'). A table: one load a byte, no compares.
constexpr auto kByteClass = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 1;
  t['"'] = t['\\'] = 1;
  t['~'] = t['/'] = 2;
  return t;
}();

// A JSON string literal's length; an escaped byte counts two (\u00XX is rarer).
std::size_t string_size(std::string_view s) noexcept {
  std::size_t n = s.size() + 2;
  for (const char c : s) n += kByteClass[static_cast<unsigned char>(c)] & 1;
  return n;
}

// How many bytes of `key` a JSON Pointer escapes ('~' and '/': two bytes each).
std::size_t pointer_escapes(std::string_view key) noexcept {
  std::size_t n = 0;
  for (const char c : key) n += kByteClass[static_cast<unsigned char>(c)] >> 1;
  return n;
}

// As json::write_number: integers below 2^53 in full, other numbers in their shortest form.
std::size_t number_size(double d) noexcept {
  constexpr double kExact = 9007199254740992.0;    // 2^53
  if (d > -kExact && d < kExact && d == std::trunc(d)) {
    std::size_t n = d < 0 ? 2 : 1;
    for (auto a = static_cast<std::uint64_t>(std::fabs(d)); a >= 10; a /= 10) ++n;
    return n;
  }
  char buf[json::kMaxNumberChars];
  return json::format_number(d, buf);  // its cache makes the write after this one cheap too
}

// json::write's length of `v`, or some value >= `cap` once it is known to reach it: a
// large mirror member costs only as much walking as the decision needs.
std::size_t json_size(const Value& v, std::size_t cap) noexcept {
  switch (v.kind()) {
    case Value::Kind::null: return 4;
    case Value::Kind::boolean: return v.as_bool() ? 4 : 5;
    case Value::Kind::number: return number_size(v.as_number());
    case Value::Kind::string: return string_size(v.as_string());
    case Value::Kind::array: {
      std::size_t n = 1;                            // [ ] less the comma counted per item
      for (const Value& item : v.items()) {
        if (n >= cap) return n;
        n += json_size(item, cap - n) + 1;
      }
      return std::max<std::size_t>(n, 2);
    }
    case Value::Kind::object: {
      std::size_t n = 1;
      for (const auto& [key, member] : v.members()) {
        if (n >= cap) return n;
        n += string_size(key) + 1;
        n += json_size(member, n < cap ? cap - n : 1) + 1;
      }
      return std::max<std::size_t>(n, 2);
    }
  }
  return 0;
}

// A key's first 8 bytes as a big-endian number (zeros past its end): where two keys differ
// there, and most do, ordering them takes an integer compare instead of a call to memcmp.
std::uint64_t key_head(std::string_view key) noexcept {
  unsigned char bytes[8] = {};
  std::memcpy(bytes, key.data(), std::min<std::size_t>(key.size(), 8));
  std::uint64_t head = 0;
  for (const unsigned char b : bytes) head = head << 8 | b;  // a byte swap, compiled
  return head;
}

std::size_t op_size(const Op& op) noexcept {
  const std::size_t n = kOpBytes[static_cast<int>(op.kind)] + op.path.size();
  return op.kind == OpKind::remove ? n : n + json_size(op.value, SIZE_MAX);
}

class Differ {
 public:
  Differ(lua_State* L, int marker, std::vector<Op>& out, const char* what)
      : L_(L), marker_(marker), out_(out), what_(what) {}

  bool compare(int idx, const Value& m);
  bool compare_paths(int idx, const Value& m, std::span<const Path* const> paths,
                     std::size_t depth);
  Error take_error() { return std::move(error_); }

 private:
  // Ops out_[first, end) were emitted under the object member `key`, at `pos` of the
  // mirror (npos: a key the mirror lacks). What order_ops() sorts and compact() weighs.
  struct Touch {
    std::string_view key;
    std::size_t pos, first, end;
  };

  bool compare_table(int idx, const Value& m);
  bool room_for(int idx);
  bool has_marker(int idx);
  bool compare_object(int idx, const Value& m);
  bool compare_members(int idx, const Value& m);
  std::size_t find_member(const Value& m, std::string_view k, std::size_t step, std::size_t last);
  std::string_view lasting_key(std::string_view k, bool number, const Value& m, std::size_t pos);
  void order_ops(std::size_t touch_base);
  void permute_ops(std::size_t first);
  bool path_member(int idx, const Value& m, std::span<const Path* const> group,
                   std::size_t depth);
  bool path_item(int idx, const Value& m, std::size_t n, std::span<const Path* const> group,
                 std::size_t depth);
  bool push_member(int idx, std::string_view key, const Value& m, std::size_t& pos,
                   Seg::Kind& kind);
  bool compare_member(int value, const Value& m, std::size_t pos);
  bool every_member_changed(int idx, const Value& m);
  bool scalar_equal(int idx, const Value& m);
  bool compact(int idx, const Value& m, std::size_t first_op, std::size_t touch_base);
  bool direct_value(const Touch& t, std::size_t here) const;
  std::size_t touch_size(const Touch& t, const Value& m, std::size_t here, bool cancelled,
                         std::size_t cap);
  bool compare_array(int idx, std::size_t n, const Value& m);
  bool compare_item(int idx, std::size_t i, const Value& m);
  std::size_t front_shift(int idx, std::size_t p, std::size_t a, std::size_t b,
                          const std::vector<Value>& old);
  std::size_t back_shift(int idx, std::size_t p, std::size_t a, std::size_t b,
                         const std::vector<Value>& old);
  bool run_equal(int idx, std::size_t from, const std::vector<Value>& old, std::size_t old_from,
                 std::size_t count);
  bool equal(int idx, const Value& m);
  bool equal_object(int idx, const Value& m);
  bool item_equal(int idx, std::size_t i, const Value& m);
  bool add_items(int idx, std::size_t first, std::size_t count);
  bool remove_items(std::size_t first, std::size_t count);
  bool emit(OpKind kind, int idx);
  bool scalar_value(int idx, Value& out);
  bool replace_table(int idx);
  void emit_remove();
  void push(Op&& op);
  bool has_string_key(int idx, std::string_view key);
  bool has_key(int idx, std::string_view key);
  std::string pointer() const;
  std::size_t pointer_size() const noexcept;
  std::string lua_path() const;

  lua_State* L_;
  int marker_;
  std::vector<Op>& out_;
  const char* what_;
  std::vector<Seg> segs_;
  std::vector<int> tables_;                         // stack slots of the tables segs_ lead through
  std::vector<const void*> enclosing_;              // scratch for emit()
  std::vector<Touch> touched_;                      // members with ops, of the objects open
  static constexpr std::size_t kSmall = 16;         // find_member(): objects with fewer members
  std::uint8_t small_order_[kSmall][kSmall] = {};   // [members][step]: where that key was
  std::forward_list<std::string> number_keys_;      // text of new integer keys, for their Touch
  // order_ops(): touches[at] ranked by its key's head; `moved_`, ops on their way.
  struct Rank {
    std::uint64_t head;
    std::size_t at;
  };
  std::vector<Rank> ranks_;
  std::vector<Op> moved_;
  std::vector<unsigned char> cancels_;              // compact(): ops whose value is left out
  int reserved_ = 0;                                // stack slots known to exist
  Error error_;
};

// ---- scalars and kinds ----------------------------------------------------------------

bool Differ::compare(int idx, const Value& m) {
  if (lua_type(L_, idx) == LUA_TTABLE) return compare_table(idx, m);
  return scalar_equal(idx, m) || emit(OpKind::replace, idx);
}

// A non-table Lua value against its mirror; functions and such are never equal (emit()
// reports them).
bool Differ::scalar_equal(int idx, const Value& m) {
  switch (lua_type(L_, idx)) {
    case LUA_TNIL: return m.is_null();
    case LUA_TLIGHTUSERDATA: return m.is_null() && !lua_touserdata(L_, idx);  // atrium.null
    case LUA_TBOOLEAN: return m.is_bool() && m.as_bool() == (lua_toboolean(L_, idx) != 0);
    case LUA_TNUMBER: return m.is_number() && m.as_number() == lua_tonumber(L_, idx);
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L_, idx, &n);
      return m.is_string() && m.as_string() == std::string_view(s, n);
    }
    default: return false;
  }
}

// Every Lua API call counts here (each costs ~10-25 ns, and a scan makes several per
// entry): an object mirror with an unmarked table goes straight to compare_object, which
// judges the 1..n rule only if a number key shows up first.
bool Differ::compare_table(int idx, const Value& m) {
  if ((!m.is_object() && !m.is_array()) || !room_for(idx)) return emit(OpKind::replace, idx);
  tables_.push_back(idx);
  bool ok = true;
  if (m.is_object() && !has_marker(idx)) {
    ok = compare_object(idx, m);
  } else {
    std::size_t n = 0;
    const bool array = script::is_array_table(L_, idx, marker_, n);
    if (array != m.is_array()) {
      ok = replace_table(idx);
    } else {
      ok = array ? compare_array(idx, n, m) : compare_object(idx, m);
    }
  }
  tables_.pop_back();
  return ok;
}

// lua_checkstack in steps: a level of the walk uses three slots and a conversion checks
// for its own, so one call covers about ten levels.
bool Differ::room_for(int idx) {
  if (idx + 8 <= reserved_) return true;
  if (!lua_checkstack(L_, 40)) return false;
  reserved_ = lua_gettop(L_) + 40;
  return idx + 8 <= reserved_;
}

bool Differ::has_marker(int idx) {
  if (lua_getmetatable(L_, idx) == 0) return false;
  const bool marked = lua_rawequal(L_, -1, marker_) != 0;
  lua_pop(L_, 1);
  return marked;
}

// ---- objects --------------------------------------------------------------------------

// The member ops are weighed against one replace of the object once they are known.
bool Differ::compare_object(int idx, const Value& m) {
  const std::size_t first_op = out_.size();
  const std::size_t touch_base = touched_.size();
  bool ok = compare_members(idx, m);
  if (ok && touched_.size() > touch_base + 1) order_ops(touch_base);
  if (ok && touched_.size() > touch_base) ok = compact(idx, m, first_op, touch_base);
  touched_.resize(touch_base);
  return ok;
}

// lua_next yields keys in hash order and the mirror holds them sorted (and grows at its
// end): find_member() learns the one order from the other.
bool Differ::compare_members(int idx, const Value& m) {
  const auto& members = m.members();
  std::size_t last = Value::npos;                   // the member the previous key found
  std::size_t step = 0;                             // keys met so far
  std::size_t matched = 0;
  bool judged = false;
  const int key = lua_gettop(L_) + 1;
  lua_pushnil(L_);
  while (lua_next(L_, idx) != 0) {
    char buf[32];
    std::string_view k;
    const int key_type = lua_type(L_, key);
    const bool number = key_type == LUA_TNUMBER;
    if (!judged) {
      judged = true;                                // a string key: not an array
      std::size_t n = 0;
      if (number) {
        lua_settop(L_, key - 1);
        if (script::is_array_table(L_, idx, marker_, n)) return replace_table(idx);
        lua_pushnil(L_);                            // an object after all: start over
        continue;
      }
    }
    if (key_type == LUA_TSTRING) {
      std::size_t len = 0;
      const char* s = lua_tolstring(L_, key, &len);
      k = std::string_view(s, len);
    } else if (!number || !script::key_text(L_, key, buf, k) || has_string_key(idx, k)) {
      // A key the rules refuse or t[3] beside t["3"] (and below, a new key that is not
      // UTF-8): converting the whole table reports it in the words of to_value.
      lua_settop(L_, key - 1);
      return replace_table(idx);
    }
    const std::size_t pos = find_member(m, k, step++, last);
    if (pos == Value::npos && !number && !json::is_valid_utf8(k)) {
      lua_settop(L_, key - 1);
      return replace_table(idx);
    }
    segs_.push_back(Seg{k, 0, number ? Seg::Kind::number_key : Seg::Kind::key});
    const std::size_t first_op = out_.size();
    bool ok = true;
    if (pos == Value::npos) {
      ok = emit(OpKind::add, key + 1);
    } else {
      last = pos;
      ++matched;
      ok = compare(key + 1, members[pos].second);
    }
    if (!ok) return false;
    if (out_.size() != first_op) {
      touched_.push_back(Touch{lasting_key(k, number, m, pos), pos, first_op, out_.size()});
    }
    segs_.pop_back();
    lua_pop(L_, 1);
  }
  if (matched == members.size()) return true;       // nothing was removed
  for (std::size_t pos = 0; pos < members.size(); ++pos) {
    if (has_key(idx, members[pos].first)) continue;
    segs_.push_back(Seg{members[pos].first, 0, Seg::Kind::key});
    touched_.push_back(Touch{members[pos].first, pos, out_.size(), out_.size() + 1});
    emit_remove();
    segs_.pop_back();
  }
  return true;
}

// Where key `k`, the `step`th key lua_next gave for the table (`last`: where the one before
// it was found), is in the object mirror `m`. A large object learns its table's order
// itself (position_after). Small objects are mostly records alike ({x, y, name} for each
// player, {user, text, at} for each message), whose keys lua_next gives in one order for
// all of them: the same keys, set the same way. So the differ remembers, by member count,
// where each step's key was last time, and a record's keys are found at the first try.
std::size_t Differ::find_member(const Value& m, std::string_view k, std::size_t step,
                                std::size_t last) {
  const auto& members = m.members();
  const std::size_t n = members.size();
  if (n >= kSmall || step >= kSmall) return m.position_after(k, last);
  std::uint8_t& guess = small_order_[n][step];
  if (guess < n && members[guess].first == k) return guess;
  const std::size_t pos = m.position(k);
  if (pos != Value::npos) guess = static_cast<std::uint8_t>(pos);
  return pos;
}

// The text of key `k` as long as the diff runs, for order_ops(): the mirror's for a member
// it has, the Lua string's (the table holds it) for a new string key, and a copy for a new
// integer key, whose text lives in the scan's stack buffer.
std::string_view Differ::lasting_key(std::string_view k, bool number, const Value& m,
                                     std::size_t pos) {
  if (pos != Value::npos) return m.members()[pos].first;
  if (!number) return k;
  return number_keys_.emplace_front(k);            // a list: allocates nothing until used
}

// The ops under one object go out in key order (bytewise, the raw key), not in lua_next's
// hash order, which differs between processes: the same change gives the same patch
// bytes anywhere. Each member's ops move as one block and keep their own order (an array's
// ops depend on it); so do removes, sorted in with the rest. The touches, which partition
// the object's ops in the order they were emitted, are kept describing them.
// A tick that moves every player sorts a hundred members or more here, so keys are ranked
// by their heads and, where each member has one op (the common case), every op is moved
// once, along the cycles of the permutation.
void Differ::order_ops(std::size_t touch_base) {
  const auto touches = std::span(touched_).subspan(touch_base);
  ranks_.clear();
  bool single = true;                               // one op per member
  for (std::size_t i = 0; i < touches.size(); ++i) {
    ranks_.push_back(Rank{key_head(touches[i].key), i});
    single = single && touches[i].end == touches[i].first + 1;
  }
  const auto less = [&](const Rank& a, const Rank& b) {
    return a.head != b.head ? a.head < b.head : touches[a.at].key < touches[b.at].key;
  };
  if (std::is_sorted(ranks_.begin(), ranks_.end(), less)) return;
  assert(touches.back().end == out_.size() &&
         std::adjacent_find(touches.begin(), touches.end(), [](const Touch& a, const Touch& b) {
           return a.end != b.first;
         }) == touches.end());
  std::sort(ranks_.begin(), ranks_.end(), less);
  const std::size_t first = touches.front().first;
  if (single) {
    for (std::size_t k = 0; k < ranks_.size(); ++k) {
      touches[ranks_[k].at].first = first + k;
      touches[ranks_[k].at].end = first + k + 1;
    }
    permute_ops(first);
    return;
  }
  moved_.clear();
  for (const Rank& rank : ranks_) {
    Touch& t = touches[rank.at];
    const std::size_t at = first + moved_.size();
    for (std::size_t j = t.first; j < t.end; ++j) moved_.push_back(std::move(out_[j]));
    t.end = at + (t.end - t.first);
    t.first = at;
  }
  std::move(moved_.begin(), moved_.end(), out_.begin() + static_cast<std::ptrdiff_t>(first));
}

// out_[first + k] becomes what out_[first + ranks_[k].at] was, for every k: one cycle of
// the permutation at a time, each op moved once (ranks_ is used up).
void Differ::permute_ops(std::size_t first) {
  for (std::size_t k = 0; k < ranks_.size(); ++k) {
    if (ranks_[k].at == k) continue;
    Op held = std::move(out_[first + k]);
    for (std::size_t j = k;;) {
      const std::size_t from = ranks_[j].at;
      ranks_[j].at = j;                             // placed
      if (from == k) {
        out_[first + j] = std::move(held);
        break;
      }
      out_[first + j] = std::move(out_[first + from]);
      j = from;
    }
  }
}

// The table being scanned (the last of tables_) is replaced as a whole: it does not
// enclose itself.
bool Differ::replace_table(int idx) {
  const int self = tables_.back();
  tables_.pop_back();
  const bool ok = emit(OpKind::replace, idx);
  tables_.push_back(self);
  return ok;
}

// Ops under the object at `idx` (out_[first_op..]) against one replace of the whole
// object: when they would encode larger, the replace goes out instead ({x, y, t} all
// changed: one op, not three; only x changed: the one op stays). Both sides are
// estimated from the mirror and the ops' values, and the weighing stops as soon as the
// object is known to be the larger, so a large object costs little to keep. The whole
// state is never replaced: clients may hold on to its root.
bool Differ::compact(int idx, const Value& m, std::size_t first_op, std::size_t touch_base) {
  if (segs_.empty()) return true;
  const std::size_t here = pointer_size();
  const std::size_t fixed = kOpBytes[static_cast<int>(OpKind::replace)] + here;
  auto touches = std::span(touched_).subspan(touch_base);
  // A member that one op sets to a value (a player's x) has that value's bytes on both
  // sides, in its op and in the object: they cancel, and the value is never weighed (a
  // number costs a format_number each time it is). The decision is the one the full sums
  // give: `size < ops - fixed` with the same bytes left out of both.
  cancels_.assign(out_.size() - first_op, 0);
  bool cancelled = false;
  for (const Touch& t : touches) {
    if (direct_value(t, here)) {
      cancels_[t.first - first_op] = 1;
      cancelled = true;
    }
  }
  std::size_t ops = out_.size() - first_op - 1;     // the commas between them
  for (std::size_t j = first_op; j < out_.size(); ++j) {
    const Op& op = out_[j];
    ops += cancels_[j - first_op] ? kOpBytes[static_cast<int>(op.kind)] + op.path.size() : op_size(op);
  }
  // Not even {} would be smaller. (With a value cancelled the object holds one member of
  // at least 5 bytes, so the weighing below says no where this would.)
  if (!cancelled && ops <= fixed + 2) return true;
  if (ops <= fixed) return true;
  const std::size_t budget = ops - fixed;           // what the object must encode below
  std::sort(touches.begin(), touches.end(),
            [](const Touch& a, const Touch& b) { return a.pos < b.pos; });
  std::size_t size = 1;                             // { } less the comma counted per member
  for (const Touch& t : touches) {
    size += touch_size(t, m, here, cancels_[t.first - first_op] != 0, budget - size);
    if (size >= budget) return true;
  }
  const auto& members = m.members();
  std::size_t next = 0;                             // the next touch, in mirror order
  for (std::size_t pos = 0; pos < members.size(); ++pos) {
    if (next < touches.size() && touches[next].pos == pos) {
      ++next;
      continue;
    }
    size += string_size(members[pos].first) + 1;
    size += json_size(members[pos].second, size < budget ? budget - size : 1) + 1;
    if (size >= budget) return true;
  }
  out_.resize(first_op);
  return replace_table(idx);
}

// One op at the member itself (the first '/' after the object's path is the last) that
// sets its value: an add or replace.
bool Differ::direct_value(const Touch& t, std::size_t here) const {
  const Op& op = out_[t.first];
  return t.end == t.first + 1 && op.kind != OpKind::remove &&
         op.path.find('/', here + 1) == std::string::npos;
}

// A touched member's share of the object's new encoding. One op at the member itself
// gives it: a remove, nothing; an add or replace, its value (left out when `cancelled`:
// compact() left it out of the op too). Ops deeper down leave it about the size it had.
// Exact below `cap`; some size at least `cap` once it is known to reach it (json_size's
// rule: the object is then the larger, and the rest of this member need not be weighed).
std::size_t Differ::touch_size(const Touch& t, const Value& m, std::size_t here, bool cancelled,
                               std::size_t cap) {
  const Op& op = out_[t.first];
  const bool direct = t.end == t.first + 1 && op.path.find('/', here + 1) == std::string::npos;
  if (direct && op.kind == OpKind::remove) return 0;
  const std::size_t key = t.pos == Value::npos ? op.path.size() - here - 1 + 2
                                               : string_size(m.members()[t.pos].first);
  if (cancelled || key + 2 >= cap) return key + 2;
  const Value& value = direct ? op.value : m.members()[t.pos].second;
  return key + 2 + json_size(value, cap - key - 2);
}

bool Differ::has_string_key(int idx, std::string_view key) {
  lua_pushlstring(L_, key.data(), key.size());
  lua_rawget(L_, idx);
  const bool found = !lua_isnil(L_, -1);
  lua_pop(L_, 1);
  return found;
}

bool Differ::has_key(int idx, std::string_view key) {
  if (has_string_key(idx, key)) return true;
  double n = 0;
  if (!script::integer_key(key, n)) return false;
  lua_pushnumber(L_, n);
  lua_rawget(L_, idx);
  const bool found = !lua_isnil(L_, -1);
  lua_pop(L_, 1);
  return found;
}

// ---- paths (diff_paths) ---------------------------------------------------------------

// `paths` are sorted and share their first `depth` keys, which lead to the table at
// `idx` (mirror `m`, an object or array). Paths with the same next key are one group:
// sorted, its shortest path comes first, and a path that ends at the key covers the
// rest of its group.
bool Differ::compare_paths(int idx, const Value& m, std::span<const Path* const> paths,
                           std::size_t depth) {
  if (!room_for(idx)) return emit(OpKind::replace, idx);
  std::size_t n = 0;
  const bool array = script::is_array_table(L_, idx, marker_, n);
  if (array != m.is_array()) return emit(OpKind::replace, idx);   // kind changed: whole
  tables_.push_back(idx);
  bool ok = true;
  if (array && n != m.size()) {
    ok = compare_array(idx, n, m);                  // items moved: the array logic decides
  } else {
    const std::size_t first_op = out_.size();
    const std::size_t touch_base = touched_.size();
    // Sorted paths visit an object's members in diff()'s order, so order_ops() finds them
    // sorted. An array's items go in string order ("10" before "2"): as deterministic, and
    // items of an array whose length stays are independent, so their order is free.
    for (std::size_t g = 0; ok && g < paths.size();) {
      const std::string& key = (*paths[g])[depth];
      std::size_t end = g + 1;
      while (end < paths.size() && (*paths[end])[depth] == key) ++end;
      const auto group = paths.subspan(g, end - g);
      ok = array ? path_item(idx, m, n, group, depth) : path_member(idx, m, group, depth);
      g = end;
    }
    if (ok && touched_.size() > touch_base + 1) order_ops(touch_base);
    if (ok && touched_.size() > touch_base) ok = compact(idx, m, first_op, touch_base);
    touched_.resize(touch_base);
  }
  tables_.pop_back();
  return ok;
}

// The member of object `idx` that `group` goes through: followed further while both
// sides hold tables, else compared whole.
bool Differ::path_member(int idx, const Value& m, std::span<const Path* const> group,
                         std::size_t depth) {
  const std::string& key = (*group.front())[depth];
  const int value = lua_gettop(L_) + 1;
  std::size_t pos = Value::npos;
  Seg::Kind kind = Seg::Kind::key;
  if (!push_member(idx, key, m, pos, kind)) return replace_table(idx);
  segs_.push_back(Seg{key, 0, kind});
  const std::size_t first_op = out_.size();
  const bool ends_here = group.front()->size() == depth + 1;
  bool ok = true;
  if (!ends_here && pos != Value::npos && lua_istable(L_, value) &&
      (m.members()[pos].second.is_object() || m.members()[pos].second.is_array())) {
    ok = compare_paths(value, m.members()[pos].second, group, depth + 1);
  } else {
    ok = compare_member(value, m, pos);
  }
  if (!ok) return false;
  if (out_.size() != first_op) touched_.push_back(Touch{key, pos, first_op, out_.size()});
  segs_.pop_back();
  lua_settop(L_, value - 1);
  return true;
}

// The item of array `idx` (n items, as many as the mirror's) that `group` goes through.
// A key that is no item changed nothing: the table still holds keys 1..n only.
bool Differ::path_item(int idx, const Value& m, std::size_t n, std::span<const Path* const> group,
                       std::size_t depth) {
  double number = 0;
  if (!script::integer_key((*group.front())[depth], number) || number < 1 ||
      number > static_cast<double>(n)) {
    return true;
  }
  const auto i = static_cast<std::size_t>(number) - 1;
  const Value& item = m.items()[i];
  lua_rawgeti(L_, idx, static_cast<int>(i + 1));
  const int value = lua_gettop(L_);
  segs_.push_back(Seg{{}, i, Seg::Kind::item});
  const bool ends_here = group.front()->size() == depth + 1;
  bool ok = true;
  if (!ends_here && lua_istable(L_, value) && (item.is_object() || item.is_array())) {
    ok = compare_paths(value, item, group, depth + 1);
  } else {
    ok = compare(value, item);
  }
  if (!ok) return false;
  segs_.pop_back();
  lua_settop(L_, value - 1);
  return true;
}

// Pushes the value of object `idx` under the JSON key `key` (t["3"], else t[3]: an
// integer key is the same JSON key) and finds `key` in `m`; `kind` says which Lua key
// held it. False, with nothing pushed, when only converting the whole table can word
// what is wrong: t[3] beside t["3"], or a new key that is not UTF-8.
bool Differ::push_member(int idx, std::string_view key, const Value& m, std::size_t& pos,
                         Seg::Kind& kind) {
  const int value = lua_gettop(L_) + 1;
  lua_pushlstring(L_, key.data(), key.size());
  lua_rawget(L_, idx);
  kind = Seg::Kind::key;
  double n = 0;
  if (script::integer_key(key, n)) {
    lua_pushnumber(L_, n);
    lua_rawget(L_, idx);
    if (!lua_isnil(L_, -1)) {
      if (!lua_isnil(L_, value)) {
        lua_settop(L_, value - 1);
        return false;
      }
      lua_replace(L_, value);
      kind = Seg::Kind::number_key;
    } else {
      lua_pop(L_, 1);
    }
  }
  pos = m.position(key);
  if (!lua_isnil(L_, value) && pos == Value::npos && kind == Seg::Kind::key &&
      !json::is_valid_utf8(key)) {
    lua_settop(L_, value - 1);
    return false;
  }
  return true;
}

// The Lua value at `value` against member `pos` of the object mirror `m` (npos: absent).
bool Differ::compare_member(int value, const Value& m, std::size_t pos) {
  if (lua_isnil(L_, value)) {
    if (pos != Value::npos) emit_remove();
    return true;
  }
  if (pos == Value::npos) return emit(OpKind::add, value);
  const Value& was = m.members()[pos].second;
  if (lua_istable(L_, value) && every_member_changed(value, was))
    return emit(OpKind::replace, value);
  return compare(value, was);
}

// The usual setIn of a small record ({x, y, t} all moved) has every member changed, and
// compact() would turn its member ops into one replace of the record anyway. Found here
// with one walk and no ops built, it goes straight to the replace. Only where a path
// ends, where the value is expected to differ: in a full scan most records are equal,
// and this walk would come on top of compare()'s.
// The record qualifies when its mirror has 2 to kMaxMembers members, all scalars under
// plain keys, and the table holds exactly those keys, each with a different scalar.
// There the replace is always the smaller encoding (each member op repeats the 35 bytes
// of {"op":"replace","path":"","value":} and the path, one member costs 3 more bytes in
// the object), so the result is the one compare() and compact() give.
bool Differ::every_member_changed(int idx, const Value& m) {
  constexpr std::size_t kMaxMembers = 8;
  if (!m.is_object() || m.size() < 2 || m.size() > kMaxMembers || has_marker(idx)) return false;
  const auto& members = m.members();
  for (const auto& [key, member] : members) {
    if (member.is_object() || member.is_array() || member.is_null()) return false;
    for (const char c : key) {
      if (c == '"' || c == '\\' || c == '~' || c == '/' || static_cast<unsigned char>(c) < 0x20)
        return false;
    }
  }
  const int key = lua_gettop(L_) + 1;
  std::size_t seen = 0;
  bool changed = true;
  lua_pushnil(L_);
  while (changed && lua_next(L_, idx) != 0) {
    const int type = lua_type(L_, key + 1);
    changed = lua_type(L_, key) == LUA_TSTRING && ++seen <= members.size() &&
              (type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TBOOLEAN);
    if (changed) {
      std::size_t len = 0;
      const char* s = lua_tolstring(L_, key, &len);
      const std::size_t pos = m.position(std::string_view(s, len));
      changed = pos != Value::npos && !scalar_equal(key + 1, members[pos].second);
    }
    lua_pop(L_, 1);
  }
  lua_settop(L_, key - 1);
  return changed && seen == members.size();
}

// ---- arrays ---------------------------------------------------------------------------

// Trims the common prefix and suffix, then handles the middle: a pure insertion or
// deletion, a shift (a capped log: table.remove(t, 1) + table.insert(t, x) gives
// remove /0 + add /n-1, not n replaces), or pairwise changes plus a tail. Every op is
// valid at its place in the sequence (RFC 6902 applies them in order).
bool Differ::compare_array(int idx, std::size_t n, const Value& m) {
  const auto& old = m.items();
  const std::size_t k = old.size();
  // Emptied or filled from empty: one replace says it, not n removes or adds.
  if (n > static_cast<std::size_t>(INT_MAX) || (n == 0 && k > 1) || (k == 0 && n > 1)) {
    return replace_table(idx);
  }
  const std::size_t both = std::min(n, k);
  std::size_t p = 0;
  while (p < both && item_equal(idx, p, old[p])) ++p;
  std::size_t s = 0;
  while (s < both - p && item_equal(idx, n - 1 - s, old[k - 1 - s])) ++s;
  const std::size_t a = n - p - s;                  // new items between prefix and suffix
  const std::size_t b = k - p - s;                  // old items there
  if (a == 0) return remove_items(p, b);
  if (b == 0) return add_items(idx, p, a);
  if (const std::size_t d = front_shift(idx, p, a, b, old)) {
    return remove_items(p, d) && add_items(idx, p + b - d, a - (b - d));
  }
  if (const std::size_t e = back_shift(idx, p, a, b, old)) {
    return remove_items(p + b - e, e) && add_items(idx, p, a - (b - e));
  }
  const std::size_t overlap = std::min(a, b);
  for (std::size_t i = p; i < p + overlap; ++i) {
    if (!compare_item(idx, i, old[i])) return false;
  }
  if (a > b) return add_items(idx, p + b, a - b);
  return remove_items(p + a, b - a);
}

// Smallest d such that the new middle starts with the old middle less its first d
// items: [x.., C] -> [C, y..]. Taken only when its ops (d removes, the rest adds) are
// no more than the pairwise ones; 0 when there is none.
std::size_t Differ::front_shift(int idx, std::size_t p, std::size_t a, std::size_t b,
                                const std::vector<Value>& old) {
  const std::size_t limit = (std::max(a, b) + b - a) / 2;   // a - b + 2d <= max(a, b)
  int tries = 0;
  for (std::size_t d = 1; d < b && d <= limit; ++d) {
    if (a < b - d || !item_equal(idx, p, old[p + d])) continue;
    if (run_equal(idx, p + 1, old, p + d + 1, b - d - 1)) return d;
    if (++tries == kMaxShiftTries) break;
  }
  return 0;
}

// Smallest e such that the new middle ends with the old middle less its last e items:
// [C, x..] -> [y.., C].
std::size_t Differ::back_shift(int idx, std::size_t p, std::size_t a, std::size_t b,
                               const std::vector<Value>& old) {
  const std::size_t limit = (std::max(a, b) + b - a) / 2;
  int tries = 0;
  for (std::size_t e = 1; e < b && e <= limit; ++e) {
    if (a + e < b) continue;
    const std::size_t f = a + e - b;                // items inserted in front
    if (!item_equal(idx, p + f, old[p])) continue;
    if (run_equal(idx, p + f + 1, old, p + 1, b - e - 1)) return e;
    if (++tries == kMaxShiftTries) break;
  }
  return 0;
}

bool Differ::run_equal(int idx, std::size_t from, const std::vector<Value>& old,
                       std::size_t old_from, std::size_t count) {
  for (std::size_t j = 0; j < count; ++j) {
    if (!item_equal(idx, from + j, old[old_from + j])) return false;
  }
  return true;
}

bool Differ::compare_item(int idx, std::size_t i, const Value& m) {
  lua_rawgeti(L_, idx, static_cast<int>(i + 1));
  segs_.push_back(Seg{{}, i, Seg::Kind::item});
  if (!compare(lua_gettop(L_), m)) return false;
  segs_.pop_back();
  lua_pop(L_, 1);
  return true;
}

// Lua items first..first+count-1 (0-based) go in at the same indices, in order.
bool Differ::add_items(int idx, std::size_t first, std::size_t count) {
  for (std::size_t i = first; i < first + count; ++i) {
    lua_rawgeti(L_, idx, static_cast<int>(i + 1));
    segs_.push_back(Seg{{}, i, Seg::Kind::item});
    if (!emit(OpKind::add, lua_gettop(L_))) return false;
    segs_.pop_back();
    lua_pop(L_, 1);
  }
  return true;
}

// Highest index first, so each remove is valid after the ones before it.
bool Differ::remove_items(std::size_t first, std::size_t count) {
  for (std::size_t i = first + count; i-- > first;) {
    segs_.push_back(Seg{{}, i, Seg::Kind::item});
    emit_remove();
    segs_.pop_back();
  }
  return true;
}

// ---- deep equality (no ops) -----------------------------------------------------------

bool Differ::item_equal(int idx, std::size_t i, const Value& m) {
  lua_rawgeti(L_, idx, static_cast<int>(i + 1));
  const bool same = equal(lua_gettop(L_), m);
  lua_pop(L_, 1);
  return same;
}

// Descends only as deep as the mirror, like compare(), so it ends on cyclic tables.
bool Differ::equal(int idx, const Value& m) {
  switch (lua_type(L_, idx)) {
    case LUA_TNIL: return m.is_null();
    case LUA_TLIGHTUSERDATA: return m.is_null() && !lua_touserdata(L_, idx);  // atrium.null
    case LUA_TBOOLEAN: return m.is_bool() && m.as_bool() == (lua_toboolean(L_, idx) != 0);
    case LUA_TNUMBER: return m.is_number() && m.as_number() == lua_tonumber(L_, idx);
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L_, idx, &n);
      return m.is_string() && m.as_string() == std::string_view(s, n);
    }
    case LUA_TTABLE: break;
    default: return false;
  }
  if ((!m.is_object() && !m.is_array()) || !room_for(idx)) return false;
  if (m.is_object() && !has_marker(idx)) return equal_object(idx, m);
  std::size_t n = 0;
  const bool array = script::is_array_table(L_, idx, marker_, n);
  if (array != m.is_array()) return false;
  if (!array) return equal_object(idx, m);
  if (n != m.size()) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!item_equal(idx, i, m.items()[i])) return false;
  }
  return true;
}

bool Differ::equal_object(int idx, const Value& m) {
  const auto& members = m.members();
  std::size_t last = Value::npos;
  std::size_t count = 0;                            // keys met so far
  const int key = lua_gettop(L_) + 1;
  lua_pushnil(L_);
  while (lua_next(L_, idx) != 0) {
    char buf[32];
    std::string_view k;
    std::size_t pos = Value::npos;
    std::size_t n = 0;
    if (count == 0 && lua_type(L_, key) == LUA_TNUMBER &&
        script::is_array_table(L_, idx, marker_, n)) {
      lua_settop(L_, key - 1);                      // keys 1..n: an array, not this object
      return false;
    }
    if (script::key_text(L_, key, buf, k)) pos = find_member(m, k, count, last);
    if (pos == Value::npos || !equal(key + 1, members[pos].second)) {
      lua_settop(L_, key - 1);
      return false;
    }
    last = pos;
    ++count;
    lua_pop(L_, 1);
  }
  return count == members.size();                   // t[3] beside t["3"] counts twice
}

// ---- ops ------------------------------------------------------------------------------

// Converts the Lua value at `idx` for an add or replace at the current path. The
// message of a broken rule is relative to where the conversion started, so the path is
// put in front only on failure.
bool Differ::emit(OpKind kind, int idx) {
  Value scalar;
  if (scalar_value(idx, scalar)) {
    push(Op{kind, pointer(), std::move(scalar)});
    return true;
  }
  enclosing_.clear();
  for (const int table : tables_) enclosing_.push_back(lua_topointer(L_, table));
  auto value = script::to_value_at(L_, idx, {}, what_, enclosing_);
  if (!value) {
    error_ = std::move(value).error();
    error_.message.insert(0, lua_path());
    return false;
  }
  push(Op{kind, pointer(), std::move(value).value()});
  return true;
}

// The common change is one number or string: convert it here when it obeys the rules,
// without setting up a conversion. Anything else, or a rule broken, goes the long way
// so that to_value_at words the message.
bool Differ::scalar_value(int idx, Value& out) {
  switch (lua_type(L_, idx)) {
    case LUA_TBOOLEAN: out = Value(lua_toboolean(L_, idx) != 0); return true;
    case LUA_TNUMBER: {
      const double d = lua_tonumber(L_, idx);
      if (!std::isfinite(d)) return false;
      out = Value(d);
      return true;
    }
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L_, idx, &n);
      if (!json::is_valid_utf8(std::string_view(s, n))) return false;
      out = Value(std::string_view(s, n));
      return true;
    }
    default: return false;
  }
}

void Differ::emit_remove() { push(Op{OpKind::remove, pointer(), Value()}); }

// The first op makes room for a tick's worth: grown from nothing, the ops of a tick that
// moves 16 players were reallocated (and every op moved) six times. A diff with no ops
// allocates nothing.
void Differ::push(Op&& op) {
  if (out_.capacity() == 0) out_.reserve(16);
  out_.push_back(std::move(op));
}

// Written in place at its final length: appending token by token (append_token) cost a
// capacity check and a copy call per token, for paths that fit in the string itself.
std::string Differ::pointer() const {
  std::size_t size = 0;
  bool escapes = false;                             // keys mostly hold neither '~' nor '/'
  for (const Seg& seg : segs_) {
    if (seg.kind == Seg::Kind::item) {
      size += 2;                                    // '/' and the first digit
      for (std::size_t i = seg.index; i >= 10; i /= 10) ++size;
    } else {
      const std::size_t extra = pointer_escapes(seg.key);
      size += 1 + seg.key.size() + extra;
      escapes |= extra != 0;
    }
  }
  std::string p(size, '\0');
  char* w = p.data();
  for (const Seg& seg : segs_) {
    *w++ = '/';
    if (seg.kind == Seg::Kind::item) {
      w = std::to_chars(w, p.data() + p.size(), seg.index).ptr;
    } else if (!escapes) {
      std::memcpy(w, seg.key.data(), seg.key.size());
      w += seg.key.size();
    } else {
      for (const char c : seg.key) {
        if (c == '~' || c == '/') {
          *w++ = '~';
          *w++ = c == '~' ? '0' : '1';
        } else {
          *w++ = c;
        }
      }
    }
  }
  assert(w == p.data() + p.size());
  return p;
}

// pointer().size(), without building it: compact() needs only the length.
std::size_t Differ::pointer_size() const noexcept {
  std::size_t n = 0;
  for (const Seg& seg : segs_) {
    if (seg.kind == Seg::Kind::item) {
      n += 2;                                       // '/' and the first digit
      for (std::size_t i = seg.index; i >= 10; i /= 10) ++n;
    } else {
      n += 1 + seg.key.size() + pointer_escapes(seg.key);   // '~' and '/' take two bytes
    }
  }
  return n;
}

std::string Differ::lua_path() const {
  std::string p(what_);
  for (const Seg& seg : segs_) {
    switch (seg.kind) {
      case Seg::Kind::key: script::append_path_key(p, seg.key); break;
      case Seg::Kind::number_key:                   // t[3] in an object: as the script wrote it
        p.push_back('[');
        p.append(seg.key);
        p.push_back(']');
        break;
      case Seg::Kind::item:
        script::append_path_index(p, static_cast<long long>(seg.index) + 1);
        break;
    }
  }
  return p;
}

int absolute(lua_State* L, int idx) noexcept {
  return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
}

}  // namespace

Status diff(lua_State* L, int idx, const json::Value& mirror, std::vector<Op>& out,
            const char* what) {
  idx = absolute(L, idx);
  if (!lua_checkstack(L, 8)) return make_error(ErrorCode::script_error, "Lua stack exhausted");
  const int top = lua_gettop(L);
  script::push_array_marker(L);
  Differ differ(L, top + 1, out, what);
  const bool ok = differ.compare(idx, mirror);
  lua_settop(L, top);
  if (!ok) return differ.take_error();
  return {};
}

Status diff_paths(lua_State* L, int idx, const json::Value& mirror, const std::vector<Path>& paths,
                  std::vector<Op>& out, const char* what) {
  idx = absolute(L, idx);
  std::vector<const Path*> sorted;
  sorted.reserve(paths.size());
  for (const Path& path : paths) sorted.push_back(&path);
  std::sort(sorted.begin(), sorted.end(), [](const Path* a, const Path* b) { return *a < *b; });
  // Only a table can be followed into; an empty path (it sorts first) is the whole state.
  // No path at all still compares the root's kind: {} that became [] is a change.
  if (!lua_istable(L, idx) || !(mirror.is_object() || mirror.is_array()) ||
      (!sorted.empty() && sorted.front()->empty())) {
    return diff(L, idx, mirror, out, what);
  }
  if (!lua_checkstack(L, 8)) return make_error(ErrorCode::script_error, "Lua stack exhausted");
  const int top = lua_gettop(L);
  script::push_array_marker(L);
  Differ differ(L, top + 1, out, what);
  const bool ok = differ.compare_paths(idx, mirror, sorted, 0);
  lua_settop(L, top);
  if (!ok) return differ.take_error();
  return {};
}

Status diff_keys(lua_State* L, int idx, const json::Value& mirror,
                 const std::vector<std::string>& keys, std::vector<Op>& out, const char* what) {
  std::vector<Path> paths;
  paths.reserve(keys.size());
  for (const std::string& key : keys) paths.push_back(Path{key});
  return diff_paths(L, idx, mirror, paths, out, what);
}

}  // namespace atrium::state
