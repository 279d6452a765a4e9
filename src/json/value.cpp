// json::Value: lifetime of the union, object members in insertion order or sorted by key,
// and the key index that keeps lookups in large objects (a 100k-player mirror) O(1).
#include "json/value.hpp"

#include <algorithm>
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

// Keys of small objects are short and mostly differ in length or first byte ("x", "y",
// "name"): checked inline, most comparisons end without a call to memcmp.
bool same_key(const std::string& a, std::string_view b) noexcept {
  return a.size() == b.size() && (b.empty() || (a[0] == b[0] && a == b));
}

// std::string's compare is char_traits<char>::compare, which compares bytes as unsigned
// char whatever the signedness of char: the order the docs promise.
bool key_less(const Value::Member& a, const Value::Member& b) noexcept {
  return a.first < b.first;
}

// A member's place in a sort: its key's first 8 bytes as a big-endian number decide most
// comparisons without reading the key, and the sort moves 16 bytes at each step, not a
// member (its string and its Value).
struct KeyRef {
  std::uint64_t head;
  std::size_t at;
};

std::uint64_t head_of(std::string_view key) noexcept {
  std::uint64_t head = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    head = head << 8 | (i < key.size() ? static_cast<unsigned char>(key[i]) : 0u);
  }
  return head;
}

// The members' positions in key order. A small object's are kept on the stack: to_value
// sorts every object it makes, most of them a few members.
class KeyOrder {
 public:
  explicit KeyOrder(const std::vector<Value::Member>& members) : n_(members.size()) {
    if (n_ > kSmall) large_.resize(n_);
    KeyRef* refs = data();
    for (std::size_t i = 0; i < n_; ++i) refs[i] = {head_of(members[i].first), i};
    std::sort(refs, refs + n_, [&](const KeyRef& a, const KeyRef& b) {
      if (a.head != b.head) return a.head < b.head;
      return members[a.at].first < members[b.at].first;   // "ab" and "ab\0" share a head
    });
  }
  KeyRef* data() noexcept { return n_ > kSmall ? large_.data() : small_; }
  std::size_t size() const noexcept { return n_; }

 private:
  static constexpr std::size_t kSmall = 16;
  std::size_t n_;
  KeyRef small_[kSmall];
  std::vector<KeyRef> large_;
};

// Moves members[order[i].at] to position i for every i, in place, one cycle of the
// permutation at a time: a second vector of members would be as large as the object.
void permute(std::vector<Value::Member>& members, KeyOrder& order) {
  KeyRef* refs = order.data();
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (refs[i].at == i) continue;
    Value::Member held = std::move(members[i]);
    std::size_t j = i;
    for (;;) {
      const std::size_t from = refs[j].at;
      refs[j].at = j;                               // placed
      if (from == i) {
        members[j] = std::move(held);
        break;
      }
      members[j] = std::move(members[from]);
      j = from;
    }
  }
}

}  // namespace

// Open addressing with linear probing. A slot holds (hash << 32) | (position + 1); 0 is
// empty. Keeping the hash in the slot means a probe touches a member's key only when
// the hashes agree. Erase uses backward-shift deletion, so there are no tombstones.
struct Value::Index {
  std::vector<std::uint64_t> slots;
  std::size_t mask = 0;
  // position_after(): next[0] is where the last walk started, next[p + 1] the position it
  // went to after p; kUnknown where it has not been or the members moved since.
  std::vector<std::uint32_t> next;
  static constexpr std::uint32_t kUnknown = 0xffffffffu;

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

Value& Value::move_assign(Value&& o) noexcept {
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

Value Value::sorted_object(std::vector<Member>& gathered, std::string* twice) {
  KeyOrder order(gathered);
  const KeyRef* refs = order.data();
  for (std::size_t i = 1; i < order.size(); ++i) {
    const std::string& key = gathered[refs[i].at].first;
    if (refs[i].head == refs[i - 1].head && key == gathered[refs[i - 1].at].first) {
      if (twice) *twice = key;
      return Value();
    }
  }
  std::vector<Member> members;
  members.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) members.push_back(std::move(gathered[refs[i].at]));
  Value v;
  new (&v.o_) Object{std::move(members), nullptr};
  v.kind_ = Kind::object;
  return v;
}

// Already sorted is common (an object built sorted, sorted again): one pass then.
void Value::sort_members() {
  if (!is_object() || std::is_sorted(o_.members.begin(), o_.members.end(), key_less)) return;
  KeyOrder order(o_.members);
  permute(o_.members, order);
  o_.index.reset();                                 // it holds positions
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
        if (same_key(members[i].first, key)) return i;
      }
      return npos;
    }
    try {
      auto index = std::make_unique<Index>();
      index->build(members);
      o_.index = std::move(index);
    } catch (...) {                                 // no memory for the index: scan instead
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (same_key(members[i].first, key)) return i;
      }
      return npos;
    }
  }
  const std::size_t slot = o_.index->slot_of(members, key, hash_key(key));
  return slot == npos ? npos : Index::pos_of(o_.index->slots[slot]);
}

std::size_t Value::position_after(std::string_view key, std::size_t before) const noexcept {
  if (kind_ != Kind::object) return npos;
  const std::vector<Member>& members = o_.members;
  const std::size_t from = before == npos ? 0 : before + 1;
  if (!o_.index) {                                  // small: try the next member, then scan
    if (from < members.size() && same_key(members[from].first, key)) return from;
    return position(key);
  }
  std::vector<std::uint32_t>& next = o_.index->next;
  if (from < next.size()) {
    const std::size_t guess = next[from];
    if (guess < members.size() && same_key(members[guess].first, key)) {
      // The member the walk will ask for next is fetched now: its cache miss (a 100k-entry
      // mirror does not fit in the cache) overlaps the caller's work on this one.
      if (guess + 1 < next.size() && next[guess + 1] < members.size())
        __builtin_prefetch(&members[next[guess + 1]]);
      return guess;
    }
  }
  const std::size_t pos = position(key);
  if (pos == npos || members.size() >= Index::kUnknown) return pos;
  try {
    if (next.size() <= members.size()) next.resize(members.size() + 1, Index::kUnknown);
    next[from] = static_cast<std::uint32_t>(pos);
  } catch (...) {                                   // no memory to remember: found all the same
  }
  return pos;
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
    o_.index->next.clear();                         // positions after `pos` moved
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
