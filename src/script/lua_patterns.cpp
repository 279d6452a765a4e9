// Lua 5.1 patterns under the CPU budget: a backtracking matcher written from the
// reference manual (§5.4.1) and checked against LuaJIT's own functions
// (tests/unit/lua_patterns_test.cpp compares every result and every error message).
//
// The matcher tries pattern items left to right and backtracks by recursion, the way the
// manual's semantics are defined; where it recurses (captures, '?', each try of '*', '+'
// and '-') is exactly where LuaJIT does, because LuaJIT counts those nestings and gives
// up at 200 with "pattern too complex", and that limit is part of what scripts observe.
//
// Lua errors unwind through these C++ frames (LuaJIT's unwinder runs on x64), so nothing
// here owns a resource or has a destructor, and nothing that can raise is noexcept.
#include "script/lua_patterns.hpp"

#include <lua.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "script/hook_call.hpp"

namespace atrium::script {

namespace {

// Limits LuaJIT has; kept so the same patterns fail the same way.
constexpr int max_captures = 32;  // LUA_MAXCAPTURES: "too many captures"
constexpr int max_depth = 200;    // nested match() calls before "pattern too complex"

// Capture::len when the capture holds no text (yet).
constexpr std::ptrdiff_t cap_open = -1;      // "(" seen, ")" not yet
constexpr std::ptrdiff_t cap_position = -2;  // "()": captures a position

// ---------------------------------------------------------------------------------------
// The step budget

// Steps left before the next look at the clock, per thread, so a gsub whose replacement
// function calls find spends from the same purse, and a call that raised leaves the next
// one asking at once. Sharing it between engines on a thread moves only when the clock is
// read, never whose budget it is (budget_expired reads the state's own call).
[[gnu::tls_model("initial-exec")]] thread_local int g_countdown = pattern_steps_per_check;

[[gnu::cold, gnu::noinline]] void check_budget(lua_State* L) {
  if (budget_expired(L)) {
    g_countdown = 0;  // every later step asks again: a pcall around us cannot outlast it
    luaL_error(L, "%s", kBudgetExceededMessage);
  }
  g_countdown = pattern_steps_per_check;
}

inline void spend(lua_State* L, std::ptrdiff_t steps) {
  g_countdown -= static_cast<int>(std::min<std::ptrdiff_t>(steps, pattern_steps_per_check));
  if (g_countdown <= 0) [[unlikely]]
    check_budget(L);
}

// ---------------------------------------------------------------------------------------
// Character classes (%a, %d, ...): ASCII only, like LuaJIT's own tables (no locale).

enum : std::uint16_t {
  k_alpha = 1 << 0, k_cntrl = 1 << 1, k_digit = 1 << 2, k_graph = 1 << 3,
  k_lower = 1 << 4, k_punct = 1 << 5, k_space = 1 << 6, k_upper = 1 << 7,
  k_alnum = 1 << 8, k_xdigit = 1 << 9, k_zero = 1 << 10,
  k_complement = 1 << 15,  // an upper-case class letter: everything but the class
};

struct ClassTables {
  std::array<std::uint16_t, 256> of_char{};    // the classes each byte belongs to
  std::array<std::uint16_t, 256> of_letter{};  // class letter -> class bit; 0: not a class
};

constexpr ClassTables make_class_tables() {
  ClassTables t;
  for (int c = 0; c < 256; ++c) {
    const bool lower = c >= 'a' && c <= 'z';
    const bool upper = c >= 'A' && c <= 'Z';
    const bool digit = c >= '0' && c <= '9';
    const bool graph = c > ' ' && c < 127;
    const bool alnum = lower || upper || digit;
    std::uint16_t bits = 0;
    if (lower || upper) bits |= k_alpha;
    if (c < ' ' || c == 127) bits |= k_cntrl;
    if (digit) bits |= k_digit;
    if (graph) bits |= k_graph;
    if (lower) bits |= k_lower;
    if (graph && !alnum) bits |= k_punct;
    if (c == ' ' || (c >= '\t' && c <= '\r')) bits |= k_space;
    if (upper) bits |= k_upper;
    if (alnum) bits |= k_alnum;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) bits |= k_xdigit;
    if (c == 0) bits |= k_zero;
    t.of_char[static_cast<std::size_t>(c)] = bits;
  }
  // %g (graph) is not in the 5.1 manual, but LuaJIT has it.
  const char letters[] = "acdglpsuwxz";
  const std::uint16_t bits[] = {k_alpha, k_cntrl, k_digit, k_graph, k_lower, k_punct,
                                k_space, k_upper, k_alnum, k_xdigit, k_zero};
  for (std::size_t i = 0; i < sizeof bits / sizeof bits[0]; ++i) {
    const auto letter = static_cast<std::size_t>(letters[i]);
    t.of_letter[letter] = bits[i];
    t.of_letter[letter - ('a' - 'A')] = bits[i] | k_complement;
  }
  return t;
}

constexpr ClassTables classes = make_class_tables();

inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// %letter against c. A letter that names no class stands for itself (%. %% %] ...).
inline bool class_matches(unsigned char c, unsigned char letter) {
  const std::uint16_t k = classes.of_letter[letter];
  if (k == 0) return c == letter;
  const bool in = (classes.of_char[c] & k & ~k_complement) != 0;
  return (k & k_complement) ? !in : in;
}

// A set [...] against c; p is at '[' and last at its closing ']'.
bool set_matches(unsigned char c, const char* p, const char* last) {
  bool found = true;  // what finding c means; "[^" turns it round
  if (p[1] == '^') {
    found = false;
    ++p;
  }
  while (++p < last) {
    if (*p == '%') {
      ++p;
      if (class_matches(c, uc(*p))) return found;
    } else if (p[1] == '-' && p + 2 < last) {  // a range; a '-' first or last is itself
      if (uc(p[0]) <= c && c <= uc(p[2])) return found;
      p += 2;
    } else if (uc(*p) == c) {
      return found;
    }
  }
  return !found;
}

// Extra steps for testing one character against the item p..ep: a set is read whole.
inline std::ptrdiff_t set_cost(const char* p, const char* ep) { return (ep - p) / 16; }

// One single-character class (". %x [set] c") from p to ep against c.
inline bool item_matches(unsigned char c, const char* p, const char* ep) {
  switch (*p) {
    case '.': return true;
    case '%': return class_matches(c, uc(p[1]));
    case '[': return set_matches(c, p, ep - 1);
    default: return uc(*p) == c;
  }
}

// ---------------------------------------------------------------------------------------
// The matcher

struct Capture {
  const char* init;
  std::ptrdiff_t len;  // >= 0 once closed; cap_open or cap_position
};

// One match attempt's state over one subject and one pattern. Patterns end at their first
// '\0', as LuaJIT's do (it reads them as C strings); subjects may hold any byte.
struct Matcher {
  Matcher(lua_State* l, const char* s, std::size_t slen, const char* p, std::size_t plen)
      : L(l), src(s), src_end(s + slen), pat_end(p + plen) {
    if (const void* nul = std::memchr(p, 0, plen)) pat_end = static_cast<const char*>(nul);
  }

  void reset() { level = depth = 0; }
  const char* match(const char* s, const char* p);
  void prepare_scan(const char* p);
  const char* next_candidate(const char* s);
  void push_capture(int i, const char* s, const char* e);
  int push_captures(const char* s, const char* e);

  lua_State* L;
  const char* src;
  const char* src_end;
  const char* pat_end;
  int level = 0;  // captures opened so far
  int depth = 0;  // nesting of match()
  Capture cap[max_captures];
  const char* first = nullptr;  // see prepare_scan
  const char* first_end = nullptr;

 private:
  const char* match_items(const char* s, const char* p);
  const char* item_end(const char* p);
  const char* longest(const char* s, const char* p, const char* ep);
  const char* shortest(const char* s, const char* p, const char* ep);
  const char* open_capture(const char* s, const char* p, std::ptrdiff_t what);
  const char* close_capture(const char* s, const char* p);
  const char* balanced(const char* s, const char* p);
  const char* frontier(const char* s, const char* p);
  const char* back_reference(const char* s, char digit);
};

// Where the rest of the pattern p matches from s: the end of the match, or nullptr.
const char* Matcher::match(const char* s, const char* p) {
  if (++depth > max_depth) luaL_error(L, "%s", "pattern too complex");
  const char* e = match_items(s, p);
  --depth;
  return e;
}

// Inlined into match(): one frame per nesting level, not two.
[[gnu::always_inline]] inline const char* Matcher::match_items(const char* s, const char* p) {
  for (;;) {  // each item that needs no backtracking continues the loop
    spend(L, 1);  // per item, so a long run of literals costs what it reads
    if (p == pat_end) return s;
    switch (*p) {
      case '(':
        if (p + 1 < pat_end && p[1] == ')') return open_capture(s, p + 2, cap_position);
        return open_capture(s, p + 1, cap_open);
      case ')':
        return close_capture(s, p + 1);
      case '$':
        if (p + 1 == pat_end) return s == src_end ? s : nullptr;
        break;  // not last: an ordinary character
      case '%':
        if (p + 1 == pat_end) break;  // item_end raises "ends with '%'"
        if (p[1] == 'b') {
          s = balanced(s, p + 2);
          if (!s) return nullptr;
          p += 4;
          continue;
        }
        if (p[1] == 'f') {
          p = frontier(s, p + 2);
          if (!p) return nullptr;
          continue;
        }
        if (is_digit(p[1])) {
          s = back_reference(s, p[1]);
          if (!s) return nullptr;
          p += 2;
          continue;
        }
        break;
      default:
        break;
    }
    const char* ep = item_end(p);
    const bool hit = s < src_end && item_matches(uc(*s), p, ep);
    switch (ep < pat_end ? *ep : '\0') {
      case '?':
        if (hit) {
          if (const char* e = match(s + 1, ep + 1)) return e;
        }
        p = ep + 1;
        continue;
      case '+':
        return hit ? longest(s + 1, p, ep) : nullptr;
      case '*':
        return longest(s, p, ep);
      case '-':
        return shortest(s, p, ep);
      default:
        if (!hit) return nullptr;
        ++s;
        p = ep;
        continue;
    }
  }
}

// A search that tries every position need not try those where the pattern's first item
// cannot match, when every match starts with that one character: a try there would fail
// at that item with no other effect. Sets `first` for such patterns (a plain item not
// followed by '*', '-' or '?'). A malformed first item raises here, as the first try would.
void Matcher::prepare_scan(const char* p) {
  if (p == pat_end) return;
  switch (*p) {
    case '(': case ')': return;
    case '$': if (p + 1 == pat_end) return; break;
    case '%':
      if (p + 1 < pat_end && (p[1] == 'b' || p[1] == 'f' || is_digit(p[1]))) return;
      break;
    default: break;
  }
  const char* ep = item_end(p);
  if (ep < pat_end && (*ep == '*' || *ep == '-' || *ep == '?')) return;
  first = p;
  first_end = ep;
}

// The first position from s where a match can start (src_end: none can).
const char* Matcher::next_candidate(const char* s) {
  if (!first) return s;
  if (first + 1 == first_end && *first != '.') {  // one literal character
    const void* hit = std::memchr(s, *first, static_cast<std::size_t>(src_end - s));
    const char* from = s;
    s = hit ? static_cast<const char*>(hit) : src_end;
    spend(L, (s - from) / 16);
  } else {
    const std::ptrdiff_t cost = 1 + set_cost(first, first_end);
    const std::ptrdiff_t chunk = std::max<std::ptrdiff_t>(1, 4096 / cost);
    for (;;) {  // in chunks, as in longest()
      const char* stop = src_end - s > chunk ? s + chunk : src_end;
      const char* at = s;
      while (s < stop && !item_matches(uc(*s), first, first_end)) ++s;
      spend(L, (s - at) * cost / 4);
      if (s != stop || s == src_end) break;
    }
  }
  return s;
}

// Past the single-character class at p: "%x" or "[...]" or one character.
const char* Matcher::item_end(const char* p) {
  const char c = *p++;
  if (c == '%') {
    if (p == pat_end) luaL_error(L, "%s", "malformed pattern (ends with '%')");
    return p + 1;
  }
  if (c == '[') {
    const char* open = p;
    if (p < pat_end && *p == '^') ++p;
    do {  // the first character is always a member, so "[]]" and "[^]]" hold ']'
      if (p == pat_end) luaL_error(L, "%s", "malformed pattern (missing ']')");
      if (*p++ == '%' && p < pat_end) ++p;
    } while (p == pat_end || *p != ']');
    spend(L, set_cost(open, p));
    return p + 1;
  }
  return p;
}

// The first position in [s, stop) that the item p..ep does not match, or stop. One loop
// per kind of item: this is the inner loop of every '*' and '+'.
const char* scan_run(const char* s, const char* stop, const char* p, const char* ep) {
  switch (*p) {
    case '.':
      return stop;
    case '%': {
      const unsigned char letter = uc(p[1]);
      while (s < stop && class_matches(uc(*s), letter)) ++s;
      return s;
    }
    case '[':
      while (s < stop && set_matches(uc(*s), p, ep - 1)) ++s;
      return s;
    default:
      while (s < stop && *s == *p) ++s;
      return s;
  }
}

// x* and x+: take as many as match, then give back one at a time.
const char* Matcher::longest(const char* s, const char* p, const char* ep) {
  const std::ptrdiff_t cost = 1 + set_cost(p, ep);  // per character tested, in quarter steps
  const std::ptrdiff_t chunk = std::max<std::ptrdiff_t>(1, 4096 / cost);
  const char* q = s;
  for (;;) {  // in chunks, so a long run still meets the budget check
    const char* stop = src_end - q > chunk ? q + chunk : src_end;
    const char* from = q;
    q = scan_run(q, stop, p, ep);
    spend(L, (q - from) * cost / 4);
    if (q != stop || q == src_end) break;
  }
  for (std::ptrdiff_t n = q - s;; --n) {
    if (const char* e = match(s + n, ep + 1)) return e;
    if (n == 0) return nullptr;
  }
}

// x-: take as few as the rest of the pattern allows.
const char* Matcher::shortest(const char* s, const char* p, const char* ep) {
  const std::ptrdiff_t cost = set_cost(p, ep);
  for (;;) {
    if (const char* e = match(s, ep + 1)) return e;
    spend(L, cost);
    if (s == src_end || !item_matches(uc(*s), p, ep)) return nullptr;
    ++s;
  }
}

[[gnu::always_inline]] inline const char* Matcher::open_capture(const char* s, const char* p,
                                                                std::ptrdiff_t what) {
  if (level >= max_captures) luaL_error(L, "%s", "too many captures");
  cap[level] = Capture{s, what};
  ++level;
  const char* e = match(s, p);
  if (!e) --level;  // backtracking: the capture never happened
  return e;
}

[[gnu::always_inline]] inline const char* Matcher::close_capture(const char* s, const char* p) {
  int i = level - 1;
  while (i >= 0 && cap[i].len != cap_open) --i;  // the innermost open one
  if (i < 0) luaL_error(L, "%s", "invalid pattern capture");
  cap[i].len = s - cap[i].init;
  const char* e = match(s, p);
  if (!e) cap[i].len = cap_open;
  return e;
}

// %bxy at s: from an x to its matching y. p is at x.
const char* Matcher::balanced(const char* s, const char* p) {
  if (p + 1 >= pat_end) luaL_error(L, "%s", "unbalanced pattern");
  if (s == src_end || *s != p[0]) return nullptr;
  const char open = p[0];
  const char close = p[1];
  int open_count = 1;
  while (++s < src_end) {
    spend(L, 1);
    if (*s == close) {  // tested first, so %bxx closes at the next x
      if (--open_count == 0) return s + 1;
    } else if (*s == open) {
      ++open_count;
    }
  }
  return nullptr;
}

// %f[set] at s: the set does not match the character before s and matches the one at
// s; either side of the subject counts as '\0'. Returns the pattern past the set.
const char* Matcher::frontier(const char* s, const char* p) {
  if (p == pat_end || *p != '[') luaL_error(L, "%s", "missing '[' after '%f' in pattern");
  const char* ep = item_end(p);
  const unsigned char before = s == src ? 0 : uc(s[-1]);
  const unsigned char at = s == src_end ? 0 : uc(*s);
  if (set_matches(before, p, ep - 1) || !set_matches(at, p, ep - 1)) return nullptr;
  return ep;
}

// %1-%9: the text of a closed capture again. A position capture matches nothing.
const char* Matcher::back_reference(const char* s, char digit) {
  const int i = digit - '1';
  if (i < 0 || i >= level || cap[i].len == cap_open) luaL_error(L, "%s", "invalid capture index");
  const std::ptrdiff_t len = cap[i].len;
  if (len < 0 || src_end - s < len) return nullptr;
  spend(L, len / 64);
  if (std::memcmp(cap[i].init, s, static_cast<std::size_t>(len)) != 0) return nullptr;
  return s + len;
}

// Capture i of the match s..e; with no captures, "capture 0" is the whole match.
// [-0, +1, e]
void Matcher::push_capture(int i, const char* s, const char* e) {
  if (i >= level) {
    if (i != 0) luaL_error(L, "%s", "invalid capture index");
    lua_pushlstring(L, s, static_cast<std::size_t>(e - s));
    return;
  }
  const std::ptrdiff_t len = cap[i].len;
  if (len == cap_open) luaL_error(L, "%s", "unfinished capture");
  if (len == cap_position)
    lua_pushinteger(L, cap[i].init - src + 1);
  else
    lua_pushlstring(L, cap[i].init, static_cast<std::size_t>(len));
}

// Every capture, or the whole match when there are none and s is not null.
// [-0, +n, e]
int Matcher::push_captures(const char* s, const char* e) {
  const int n = (level == 0 && s) ? 1 : level;
  luaL_checkstack(L, n, "too many captures");
  for (int i = 0; i < n; ++i) push_capture(i, s, e);
  return n;
}

// ---------------------------------------------------------------------------------------
// string.find, string.match

// find/match's init as LuaJIT reads it: a C cast of the number to int32, which for values
// outside int32 does what the CPU does. x86-64 gives INT32_MIN (so 2^31 or 1/0 mean
// "from the start"); arm64 saturates, and NaN is 0 there.
std::int64_t init_arg(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return 1;
  const lua_Number n = luaL_checknumber(L, idx);
  if (n > -2147483649.0 && n < 2147483648.0) return static_cast<std::int64_t>(n);  // truncated
#if defined(__aarch64__)
  return n > 0 ? INT32_MAX : n < 0 ? INT32_MIN : 0;
#else
  return INT32_MIN;
#endif
}

// LuaJIT's find searches for the plain text when no character is special.
bool has_specials(const char* p, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    switch (p[i]) {
      case '^': case '$': case '*': case '+': case '?': case '.': case '(': case '[':
      case '%': case '-':
        return true;
      default:
        break;
    }
  }
  return false;
}

// The first n[0..nlen) in h[0..hlen). memchr for the first byte, then memcmp, as LuaJIT
// does: memchr is several times faster than memmem on ordinary text. After 64 false
// starts the rest goes to memmem (glibc's is linear), so "aaa...ab" in "aaa...a" does not
// cost len * len.
const char* search_plain(lua_State* L, const char* h, std::size_t hlen, const char* n,
                         std::size_t nlen) {
  if (nlen == 0) return h;
  if (nlen > hlen) return nullptr;
  const char* const last = h + (hlen - nlen);  // the last place it can start
  int misses = 0;
  for (const char* at = h; at <= last; ++at) {
    at = static_cast<const char*>(std::memchr(at, n[0], static_cast<std::size_t>(last - at) + 1));
    if (!at) return nullptr;
    if (std::memcmp(at + 1, n + 1, nlen - 1) == 0) return at;
    spend(L, 1 + static_cast<std::ptrdiff_t>(nlen / 64));
    if (++misses == 64) {
      const std::size_t rest = static_cast<std::size_t>(h + hlen - (at + 1));
      return static_cast<const char*>(memmem(at + 1, rest, n, nlen));
    }
  }
  return nullptr;
}

// [-0, +(1|2), m]
int find_plain(lua_State* L, const char* s, std::size_t slen, std::size_t start,
               const char* p, std::size_t plen) {
  const char* hit = search_plain(L, s + start, slen - start, p, plen);
  if (!hit) {
    lua_pushnil(L);
    return 1;
  }
  const std::ptrdiff_t at = hit - s;
  lua_pushinteger(L, at + 1);
  lua_pushinteger(L, at + static_cast<std::ptrdiff_t>(plen));
  return 2;
}

int find_or_match(lua_State* L, bool find) {
  std::size_t slen = 0;
  std::size_t plen = 0;
  const char* s = luaL_checklstring(L, 1, &slen);
  const char* p = luaL_checklstring(L, 2, &plen);
  std::int64_t start = init_arg(L, 3);
  start = start < 0 ? start + static_cast<std::int64_t>(slen) : start - 1;
  start = std::clamp<std::int64_t>(start, 0, static_cast<std::int64_t>(slen));  // past the end: at it
  const auto from = static_cast<std::size_t>(start);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, plen)))
    return find_plain(L, s, slen, from, p, plen);

  Matcher m(L, s, slen, p, plen);
  const bool anchored = p < m.pat_end && *p == '^';
  if (anchored) ++p;
  else m.prepare_scan(p);
  for (const char* at = s + from;; ++at) {
    at = m.next_candidate(at);
    if (m.first && at == m.src_end) break;
    m.reset();
    if (const char* e = m.match(at, p)) {
      if (!find) return m.push_captures(at, e);
      lua_pushinteger(L, at - s + 1);
      lua_pushinteger(L, e - s);
      return m.push_captures(nullptr, nullptr) + 2;
    }
    if (anchored || at == m.src_end) break;
  }
  lua_pushnil(L);
  return 1;
}

int l_find(lua_State* L) { return find_or_match(L, true); }
int l_match(lua_State* L) { return find_or_match(L, false); }

// ---------------------------------------------------------------------------------------
// string.gmatch. The iterator's upvalues: subject, pattern, where the next search starts.
// '^' is an ordinary character here (Lua 5.1), and an empty match moves on by one.

int gmatch_next(lua_State* L) {
  std::size_t slen = 0;
  std::size_t plen = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &slen);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &plen);
  Matcher m(L, s, slen, p, plen);
  m.prepare_scan(p);
  for (auto i = static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(3))); i <= slen; ++i) {
    const char* at = m.next_candidate(s + i);
    if (m.first && at == m.src_end) break;
    m.reset();
    if (const char* e = m.match(at, p)) {
      const std::ptrdiff_t next = (e - s) + (e == at ? 1 : 0);
      lua_pushinteger(L, next);
      lua_replace(L, lua_upvalueindex(3));
      return m.push_captures(at, e);
    }
    i = static_cast<std::size_t>(at - s);
  }
  return 0;
}

int l_gmatch(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

// ---------------------------------------------------------------------------------------
// string.gsub. The result grows in a luaL_Buffer, that is in Lua strings, so the VM's
// memory cap bounds it.

// A string replacement: %0-%9 are captures, '%' before anything else is that character
// (Lua 5.1), and a lone '%' at the end adds a '\0', as LuaJIT does.
void add_template(Matcher& m, luaL_Buffer* b, const char* r, std::size_t len, const char* s,
                  const char* e) {
  spend(m.L, static_cast<std::ptrdiff_t>(len / 64));
  std::size_t i = 0;
  while (i < len) {
    const char* esc = static_cast<const char*>(std::memchr(r + i, '%', len - i));
    const std::size_t run = esc ? static_cast<std::size_t>(esc - (r + i)) : len - i;
    luaL_addlstring(b, r + i, run);
    i += run + 1;  // past the '%'
    if (!esc) break;
    const char k = i < len ? r[i] : '\0';
    ++i;
    if (!is_digit(k)) {
      luaL_addchar(b, k);
    } else if (k == '0') {
      luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    } else {
      m.push_capture(k - '1', s, e);
      luaL_addvalue(b);
    }
  }
}

// A function or table replacement (arg 3): false or nil keeps the match as it was.
void add_looked_up(Matcher& m, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = m.L;
  const CallbackScope depth(L);  // the callback may gsub again: bounded
  if (lua_type(L, 3) == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    lua_call(L, m.push_captures(s, e), 1);
  } else {
    m.push_capture(0, s, e);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushlstring(L, s, static_cast<std::size_t>(e - s));
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
}

int l_gsub(lua_State* L) {
  std::size_t slen = 0;
  std::size_t plen = 0;
  const char* src = luaL_checklstring(L, 1, &slen);
  const char* p = luaL_checklstring(L, 2, &plen);
  const int repl = lua_type(L, 3);
  // (int) of a lua_Integer, as LuaJIT's luaL_optint: 2^32 + 1 means 1.
  const auto max_n = static_cast<int>(luaL_optinteger(L, 4, static_cast<lua_Integer>(slen) + 1));
  luaL_argcheck(L, repl == LUA_TNUMBER || repl == LUA_TSTRING || repl == LUA_TFUNCTION ||
                       repl == LUA_TTABLE, 3, "string/function/table expected");
  std::size_t rlen = 0;
  const char* r = repl == LUA_TNUMBER || repl == LUA_TSTRING ? lua_tolstring(L, 3, &rlen) : nullptr;

  Matcher m(L, src, slen, p, plen);
  const bool anchored = p < m.pat_end && *p == '^';
  if (anchored) ++p;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int n = 0;
  const char* at = src;
  if (!anchored && max_n > 0) m.prepare_scan(p);
  while (n < max_n) {
    const char* candidate = m.next_candidate(at);
    luaL_addlstring(&b, at, static_cast<std::size_t>(candidate - at));  // no match there
    at = candidate;
    if (m.first && at == m.src_end) break;
    m.reset();
    const char* e = m.match(at, p);
    if (e) {
      ++n;
      if (r)
        add_template(m, &b, r, rlen, at, e);
      else
        add_looked_up(m, &b, at, e);
    }
    if (e && e > at)
      at = e;
    else if (at < m.src_end)
      luaL_addchar(&b, *at++);  // no match here, or an empty one: keep a character, move on
    else
      break;
    if (anchored) break;
  }
  luaL_addlstring(&b, at, static_cast<std::size_t>(m.src_end - at));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void push_pattern_functions(lua_State* L, int core_index) {
  if (core_index < 0 && core_index > LUA_REGISTRYINDEX) core_index += lua_gettop(L) + 1;
  const luaL_Reg fns[] = {
      {"find", l_find}, {"match", l_match}, {"gmatch", l_gmatch}, {"gsub", l_gsub}};
  lua_createtable(L, 0, 4);
  lua_getglobal(L, LUA_STRLIBNAME);
  const bool has_string = lua_istable(L, -1);
  for (const luaL_Reg& f : fns) {
    lua_pushcfunction(L, f.func);
    if (has_string) {
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, f.name);  // string.<name>
    }
    lua_setfield(L, -3, f.name);  // patterns.<name>
  }
  lua_pop(L, 1);  // string
  lua_setfield(L, core_index, "patterns");
}

}  // namespace atrium::script
