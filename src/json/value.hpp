// atrium::json::Value: the one JSON tree of the engine. Requests are parsed into it,
// each room's public-state mirror is one, and frames are written from it.
// Objects keep insertion order unless sorted (sorted_object, sort_members); lookups in
// large objects go through an index.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atrium::json {

class Value {
 public:
  enum class Kind : unsigned char { null, boolean, number, string, array, object };
  using Member = std::pair<std::string, Value>;

  Value() noexcept {}                             // null
  Value(std::nullptr_t) noexcept {}
  Value(bool b) noexcept : kind_(Kind::boolean), b_(b) {}
  Value(double n) noexcept : kind_(Kind::number), n_(n) {}
  Value(int n) noexcept : kind_(Kind::number), n_(n) {}
  Value(long n) noexcept : kind_(Kind::number), n_(static_cast<double>(n)) {}
  Value(long long n) noexcept : kind_(Kind::number), n_(static_cast<double>(n)) {}
  Value(unsigned long n) noexcept : kind_(Kind::number), n_(static_cast<double>(n)) {}
  Value(std::string s) noexcept : kind_(Kind::string), s_(std::move(s)) {}
  Value(std::string_view s) : kind_(Kind::string), s_(s) {}
  Value(const char* s) : kind_(Kind::string), s_(s) {}

  Value(const Value& o);
  Value(Value&& o) noexcept {
    if (o.kind_ < Kind::string) {
      take_scalar(o);
    } else {
      move_from(std::move(o));
    }
  }
  Value& operator=(const Value& o);
  // Inline for scalars on both sides, as the destructor: sorting an object's members or a
  // diff's ops moves many of them.
  Value& operator=(Value&& o) noexcept {
    if (kind_ < Kind::string && o.kind_ < Kind::string) {
      if (this != &o) take_scalar(o);
      return *this;
    }
    return move_assign(std::move(o));
  }
  // Inline for scalars: a request or a diff destroys many of them, and a call each showed.
  ~Value() {
    if (kind_ >= Kind::string) destroy();
  }

  static Value array();
  static Value object();
  // An object of the members in `gathered`, moved out of it in key order (sort_members)
  // into a vector of their number: what a converter that cannot cheaply tell two keys
  // apart (Lua's 3 and "3") builds its objects with, gathering each object's members in
  // one vector it keeps (clear it after). Two members with one key make no object: the
  // result is then null, `gathered` as it was and `*twice` (when given) that key.
  static Value sorted_object(std::vector<Member>& gathered, std::string* twice = nullptr);

  Kind kind() const noexcept { return kind_; }
  bool is_null() const noexcept { return kind_ == Kind::null; }
  bool is_bool() const noexcept { return kind_ == Kind::boolean; }
  bool is_number() const noexcept { return kind_ == Kind::number; }
  bool is_string() const noexcept { return kind_ == Kind::string; }
  bool is_array() const noexcept { return kind_ == Kind::array; }
  bool is_object() const noexcept { return kind_ == Kind::object; }

  // Accessors: calling one on the wrong kind is a bug (asserted in debug builds).
  // Release builds then get false, 0 or an empty string/vector rather than reading
  // the wrong member of the union below.
  bool as_bool() const noexcept { assert(is_bool()); return is_bool() && b_; }
  double as_number() const noexcept { assert(is_number()); return is_number() ? n_ : 0; }
  const std::string& as_string() const noexcept {
    assert(is_string());
    return is_string() ? s_ : empty_string();
  }

  // Arrays.
  const std::vector<Value>& items() const noexcept {
    assert(is_array());
    return is_array() ? items_ : empty_items();
  }
  std::vector<Value>& items() noexcept {
    assert(is_array());
    return is_array() ? items_ : scratch_items();
  }
  void push_back(Value v);

  // Objects. set() inserts or replaces and returns the stored value. Pointers and
  // references into an object stay valid until its next set() or erase(). A duplicate
  // key cannot arise: set() replaces in place, keeping the key's first position.
  const std::vector<Member>& members() const noexcept {
    assert(is_object());
    return is_object() ? o_.members : empty_members();
  }
  const Value* find(std::string_view key) const noexcept;
  Value* find(std::string_view key) noexcept;
  Value& set(std::string_view key, Value v);
  bool erase(std::string_view key);
  // Puts the members in key order: bytewise, as std::string compares (for UTF-8, code
  // point order). Pointers into the object stay valid only if it was sorted already.
  // A member set() adds later still goes at the end: sorting on insert would cost a
  // large object O(n) per new key.
  void sort_members();

  // Number of items (array) or members (object); 0 for scalars.
  std::size_t size() const noexcept;

  // Position of `key` in members(), or npos; the index makes it O(1) on large objects.
  // The index is built lazily by a const lookup: a Value is not shared across threads.
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t position(std::string_view key) const noexcept;

  // position() for a walk that looks up the members of an object in an order of its own
  // that repeats from one walk to the next (the differ: lua_next order, a hash order that
  // has nothing to do with members()). `before` is what the walk's previous lookup found
  // (npos for its first). A small object tries the member after `before` first. A large one
  // remembers which position followed which, so a walk like the last finds each key
  // without hashing it and has the next member fetched ahead. A guess is checked against
  // the key: any order gets the right answer, one not seen before at position()'s cost.
  std::size_t position_after(std::string_view key, std::size_t before) const noexcept;

  // Field helpers for request parsing: nullptr unless the member exists with that kind.
  const std::string* get_string(std::string_view key) const noexcept;
  const Value* get_object(std::string_view key) const noexcept;
  const Value* get_array(std::string_view key) const noexcept;

 private:
  struct Index;                                   // key -> position, built for large objects
  struct Object {
    std::vector<Member> members;
    mutable std::unique_ptr<Index> index;         // null until a lookup finds it worthwhile
  };

  static const std::string& empty_string() noexcept;
  static const std::vector<Value>& empty_items() noexcept;
  static const std::vector<Member>& empty_members() noexcept;
  static std::vector<Value>& scratch_items() noexcept;
  void destroy() noexcept;
  void copy_from(const Value& o);
  void move_from(Value&& o) noexcept;
  Value& move_assign(Value&& o) noexcept;
  // *this holds nothing on the heap, nor does `o`, a scalar, which is left null.
  void take_scalar(Value& o) noexcept {
    if (o.kind_ == Kind::boolean) {
      b_ = o.b_;
    } else {
      n_ = o.kind_ == Kind::number ? o.n_ : 0;
    }
    kind_ = o.kind_;
    o.kind_ = Kind::null;
    o.n_ = 0;
  }

  // One member of the union is live, chosen by kind_: a Value is 40 bytes instead of
  // the ~100 a struct of every alternative takes, which matters for 100k-entry mirrors.
  Kind kind_ = Kind::null;
  union {
    bool b_;
    double n_ = 0;
    std::string s_;
    std::vector<Value> items_;
    Object o_;
  };
};

// Deep equality. Objects are equal when they hold the same keys with equal values,
// in any order; numbers compare as doubles.
bool operator==(const Value& a, const Value& b) noexcept;
inline bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }

}  // namespace atrium::json
