// json::Value: lifetime of the union, object members in insertion order, and the key
// index that keeps lookups in large objects (a 100k-player mirror) O(1).
#include "json/value.hpp"

#include <cstdint>
#include <functional>
#include <new>

namespace atrium::json {

namespace {

// Objects smaller than this are searched linearly: comparing a few short keys beats
// hashing, and most state objects ({x, y, name}) never pay for an index.
constexpr std::size_t kIndexFrom = 16;

std::uint32_t hash_key(std::string_view key) noexcept {
  const std::size_t h = std::hash<std::string_view>{}(key);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

}  // namespace

// Open addressing with linear probing. A slot holds (hash << 32) | (position + 1); 0 is
// empty. Keeping the hash in the slot means a probe touches a member's key only when
// the hashes agree. Erase uses backward-shift deletion, so there are no tombstones.
struct Value::Index {
  std::vector<std::uint64_t> slots;
  std::size_t mask = 0;

  static std::uint64_t pack(std::uint32_t hash, std::size_t pos) noexcept {
    return (std::uint64_t{hash} << 32) | static_cast<std::uint64_t>(pos + 1);
  }
  static std::size_t pos_of(std::uint64_t slot) noexcept {
    return static_cast<std::size_t>(slot & 0xffffffffu) - 1;
  }
  static std::uint32_t hash_of(std::uint64_t slot) noexcept {
    return static_cast<std::uint32_t>(slot >> 32);
  }

  void build(const std::vector<Member>& members) {
    std::size_t cap = 32;
    while (cap < members.size() * 2) cap *= 2;     // load factor <= 1/2
    slots.assign(cap, 0);
    mask = cap - 1;
    for (std::size_t i = 0; i < members.size(); ++i) place(hash_key(members[i].first), i);
  }

  void place(std::uint32_t hash, std::size_t pos) noexcept {
    std::size_t i = hash & mask;
    while (slots[i] != 0) i = (i + 1) & mask;
    slots[i] = pack(hash, pos);
  }

  void insert(const std::vector<Member>& members, std::uint32_t hash, std::size_t pos) {
    if ((members.size()) * 2 > slots.size()) {
      build(members);                               // grows; `pos` is already in members
      return;
    }
    place(hash, pos);
  }

  // Slot number holding `key`, or npos.
  std::size_t slot_of(const std::vector<Member>& members, std::string_view key,
                      std::uint32_t hash) const noexcept {
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const std::uint64_t s = slots[i];
      if (s == 0) return npos;
      if (hash_of(s) == hash && members[pos_of(s)].first == key) return i;
    }
  }

  // Removes the slot of member `pos`, then renumbers the members after it, which the
  // vector erase moved down by one.
  void erase(std::size_t slot, std::size_t pos) noexcept {
    std::size_t hole = slot;
    for (std::size_t i = (hole + 1) & mask; slots[i] != 0; i = (i + 1) & mask) {
      const std::size_t home = hash_of(slots[i]) & mask;
      // Move slot i into the hole unless its home lies cyclically in (hole, i].
      const bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
      if (!stays) {
        slots[hole] = slots[i];
        hole = i;
      }
    }
    slots[hole] = 0;
    for (std::uint64_t& s : slots) {
      if (s != 0 && pos_of(s) > pos) --s;          // position lives in the low bits
    }
  }
};

const std::string& Value::empty_string() noexcept {
  static const std::string empty;
  return empty;
}

const std::vector<Value>& Value::empty_items() noexcept {
  static const std::vector<Value> empty;
  return empty;
}

const std::vector<Value::Member>& Value::empty_members() noexcept {
  static const std::vector<Member> empty;
  return empty;
}

// Only reached through a bug (items() on a non-array in a release build): hand out a
// vector nobody reads, cleared each time, instead of the bytes of another kind.
std::vector<Value>& Value::scratch_items() noexcept {
  static thread_local std::vector<Value> scratch;
  scratch.clear();
  return scratch;
}

void Value::destroy() noexcept {
  switch (kind_) {
    case Kind::string: s_.~basic_string(); break;
    case Kind::array: items_.~vector(); break;
    case Kind::object: o_.~Object(); break;
    default: break;
  }
  kind_ = Kind::null;
  n_ = 0;
}

void Value::copy_from(const Value& o) {
  switch (o.kind_) {
    case Kind::null: n_ = 0; break;
    case Kind::boolean: b_ = o.b_; break;
    case Kind::number: n_ = o.n_; break;
    case Kind::string: new (&s_) std::string(o.s_); break;
    case Kind::array: new (&items_) std::vector<Value>(o.items_); break;
    case Kind::object: new (&o_) Object{o.o_.members, nullptr}; break;  // index rebuilt lazily
  }
  kind_ = o.kind_;
}

void Value::move_from(Value&& o) noexcept {
  switch (o.kind_) {
    case Kind::null: n_ = 0; break;
    case Kind::boolean: b_ = o.b_; break;
    case Kind::number: n_ = o.n_; break;
    case Kind::string: new (&s_) std::string(std::move(o.s_)); break;
    case Kind::array: new (&items_) std::vector<Value>(std::move(o.items_)); break;
    case Kind::object: new (&o_) Object(std::move(o.o_)); break;
  }
  kind_ = o.kind_;
  o.destroy();
}

Value::Value(const Value& o) { copy_from(o); }

Value::Value(Value&& o) noexcept { move_from(std::move(o)); }

// `o` may live inside *this (v = v.items()[0]): then it is taken out before *this is
// destroyed. Only a container can hold it, so a scalar target skips the detour.
Value& Value::operator=(const Value& o) {
  if (this == &o) return *this;
  if (kind_ != Kind::array && kind_ != Kind::object) {
    destroy();
    copy_from(o);
    return *this;
  }
  Value copy(o);
  destroy();
  move_from(std::move(copy));
  return *this;
}

Value& Value::operator=(Value&& o) noexcept {
  if (this == &o) return *this;
  if (kind_ != Kind::array && kind_ != Kind::object) {
    destroy();
    move_from(std::move(o));
    return *this;
  }
  Value taken(std::move(o));
  destroy();
  move_from(std::move(taken));
  return *this;
}

Value Value::array() {
  Value v;
  new (&v.items_) std::vector<Value>();
  v.kind_ = Kind::array;
  return v;
}

Value Value::object() {
  Value v;
  new (&v.o_) Object();
  v.kind_ = Kind::object;
  return v;
}

void Value::push_back(Value v) {
  assert(is_array());
  if (is_array()) items_.push_back(std::move(v));
}

std::size_t Value::size() const noexcept {
  if (kind_ == Kind::array) return items_.size();
  if (kind_ == Kind::object) return o_.members.size();
  return 0;
}

std::size_t Value::position(std::string_view key) const noexcept {
  if (kind_ != Kind::object) return npos;
  const std::vector<Member>& members = o_.members;
  if (!o_.index) {
    if (members.size() < kIndexFrom) {
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (members[i].first == key) return i;
      }
      return npos;
    }
    try {
      auto index = std::make_unique<Index>();
      index->build(members);
      o_.index = std::move(index);
    } catch (...) {                                 // no memory for the index: scan instead
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (members[i].first == key) return i;
      }
      return npos;
    }
  }
  const std::size_t slot = o_.index->slot_of(members, key, hash_key(key));
  return slot == npos ? npos : Index::pos_of(o_.index->slots[slot]);
}

const Value* Value::find(std::string_view key) const noexcept {
  const std::size_t pos = position(key);
  return pos == npos ? nullptr : &o_.members[pos].second;
}

Value* Value::find(std::string_view key) noexcept {
  const std::size_t pos = position(key);
  return pos == npos ? nullptr : &o_.members[pos].second;
}

Value& Value::set(std::string_view key, Value v) {
  assert(is_object());
  if (!is_object()) *this = object();
  const std::size_t pos = position(key);
  if (pos != npos) {
    o_.members[pos].second = std::move(v);
    return o_.members[pos].second;
  }
  o_.members.emplace_back(std::string(key), std::move(v));
  if (o_.index) o_.index->insert(o_.members, hash_key(key), o_.members.size() - 1);
  return o_.members.back().second;
}

bool Value::erase(std::string_view key) {
  if (!is_object()) return false;
  const std::size_t pos = position(key);
  if (pos == npos) return false;
  if (o_.index) {
    const std::uint32_t hash = hash_key(key);
    o_.index->erase(o_.index->slot_of(o_.members, key, hash), pos);
  }
  o_.members.erase(o_.members.begin() + static_cast<std::ptrdiff_t>(pos));
  return true;
}

const std::string* Value::get_string(std::string_view key) const noexcept {
  const Value* v = find(key);
  return v && v->is_string() ? &v->s_ : nullptr;
}

const Value* Value::get_object(std::string_view key) const noexcept {
  const Value* v = find(key);
  return v && v->is_object() ? v : nullptr;
}

const Value* Value::get_array(std::string_view key) const noexcept {
  const Value* v = find(key);
  return v && v->is_array() ? v : nullptr;
}

bool operator==(const Value& a, const Value& b) noexcept {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::null: return true;
    case Value::Kind::boolean: return a.as_bool() == b.as_bool();
    case Value::Kind::number: return a.as_number() == b.as_number();
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::array: return a.items() == b.items();
    case Value::Kind::object: break;
  }
  const auto& am = a.members();
  const auto& bm = b.members();
  if (am.size() != bm.size()) return false;
  for (std::size_t i = 0; i < am.size(); ++i) {
    // Same order is the common case (a mirror and its copy): try position i first.
    const Value* other = bm[i].first == am[i].first ? &bm[i].second : b.find(am[i].first);
    if (!other || !(am[i].second == *other)) return false;
  }
  return true;
}

}  // namespace atrium::json
