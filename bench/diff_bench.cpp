// Diff cost against state size and change size (bench/README.md "Diff").
// State: N top-level entries {x, y, name}; C of them get a new x. Each figure is the
// median over batches of runs, in microseconds per diff. Not a test: it only prints.
#include <lua.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "json/codec.hpp"
#include "script/lua_json.hpp"
#include "state/diff.hpp"
#include "state/shadow.hpp"

using atrium::json::Value;

namespace {

// Thread CPU time, not wall time: on a shared 2-core VM a wall clock mostly measures
// who else was running. Cache pollution by neighbours still shows; the median damps it.
double cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Median time of one call, in microseconds: batches long enough (>= 200 us) for the
// clock, repeated until about `budget_ms` is spent (at least 7 batches).
double median_us(const std::function<void()>& fn, double budget_ms = 300) {
  int batch = 1;
  for (;;) {
    const double t0 = cpu_us();
    for (int i = 0; i < batch; ++i) fn();
    if (cpu_us() - t0 >= 200 || batch >= (1 << 20)) break;
    batch *= 2;
  }
  std::vector<double> samples;
  const double start = cpu_us();
  while (samples.size() < 7 || (cpu_us() - start < budget_ms * 1000 && samples.size() < 501)) {
    const double t0 = cpu_us();
    for (int i = 0; i < batch; ++i) fn();
    samples.push_back((cpu_us() - t0) / batch);
  }
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(samples.size() / 2),
                   samples.end());
  return samples[samples.size() / 2];
}

std::string key_of(int i) { return "p" + std::to_string(i); }

Value entry(int i) {
  Value e = Value::object();
  e.set("x", i);
  e.set("y", i * 2);
  e.set("name", "player " + std::to_string(i));
  return e;
}

// One room's state in a lua_State (stack index 1), its mirror and its shadow (stack index
// 2). `flat`: entries are numbers instead of {x, y, name} objects.
struct Room {
  lua_State* L = luaL_newstate();
  bool flat;
  Value mirror;                                     // in lua_next order, as to_value makes it
  Value mirror_other_order;                         // the same content, in key order
  Room(int n, bool flat_entries) : flat(flat_entries) {
    atrium::script::init_lua_json(L);
    Value state = Value::object();
    for (int i = 0; i < n; ++i) state.set(key_of(i), flat ? Value(i) : entry(i));
    atrium::script::push_value(L, state);
    mirror = atrium::script::to_value(L, 1, "state").value();
    mirror_other_order = std::move(state);
    lua_pushcfunction(L, luaopen_base);             // the walk takes next, type, ... from here
    lua_call(L, 0, 0);
    lua_settop(L, 1);
    atrium::state::push_shadow(L, mirror);
  }
  ~Room() { lua_close(L); }
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;

  void set(int i, double x) {
    if (flat) {
      lua_pushnumber(L, x);
      lua_setfield(L, 1, key_of(i).c_str());
      return;
    }
    lua_getfield(L, 1, key_of(i).c_str());
    lua_pushnumber(L, x);
    lua_setfield(L, -2, "x");
    lua_pop(L, 1);
  }

  // Changes `count` entries spread over the state, after putting back the ones an
  // earlier call changed (every spread is a subset of the 100-entry one); returns their
  // keys, as setState would have marked them.
  std::vector<std::string> change(int n, int count) {
    const int widest = std::min(n, 100);
    for (int c = 0; c < widest; ++c) {
      const int i = static_cast<int>(static_cast<long long>(c) * n / widest);
      set(i, i);
    }
    std::vector<std::string> keys;
    for (int c = 0; c < count; ++c) {
      const int i = static_cast<int>(static_cast<long long>(c) * n / count);
      set(i, -1);
      keys.push_back(key_of(i));
    }
    return keys;
  }
};

// The Lua API floor under any C scan of this state: lua_next over every table, reading
// each key and value's type and contents, comparing nothing.
long long bare_walk(lua_State* L, int idx) {
  long long sink = 0;
  std::size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) sink += lua_tolstring(L, -2, &n) != nullptr;
    const int type = lua_type(L, -1);
    if (type == LUA_TTABLE) {
      sink += lua_getmetatable(L, -1);
      sink += bare_walk(L, lua_gettop(L));
    } else if (type == LUA_TNUMBER) {
      sink += static_cast<long long>(lua_tonumber(L, -1));
    } else {
      sink += lua_tolstring(L, -1, &n) != nullptr;
    }
    lua_pop(L, 1);
  }
  return sink;
}

void diff_table(bool flat) {
  std::printf("\n%s\n\n", flat ? "State: N top-level numbers; C of them changed."
                                  : "State: N top-level entries {x, y, name}; C of them get a new x.");
  std::printf("| entries | changed | diff us | ns/entry | by shadow us | ns/entry | "
              "diff, other order us | diff_keys us | ops | API floor us | to_value (whole) us |\n");
  std::printf("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (const int n : {100, 1000, 10000, 100000}) {
    Room room(n, flat);
    std::vector<atrium::state::Op> ops;
    ops.reserve(256);
    const double convert = median_us([&] { (void)atrium::script::to_value(room.L, 1, "state"); });
    long long sink = 0;
    const double floor = median_us([&] { sink += bare_walk(room.L, 1); });
    if (sink == 42) std::printf(" ");              // keeps the walk from being optimized out
    for (const int changed : {1, 10, 100}) {
      if (changed > n) continue;
      const std::vector<std::string> keys = room.change(n, changed);
      const double full = median_us([&] {
        ops.clear();
        (void)atrium::state::diff(room.L, 1, room.mirror, ops);
      });
      const std::size_t op_count = ops.size();
      std::vector<atrium::state::Path> paths;
      const auto walk = atrium::state::walk_shadow(room.L, 1, 2, paths);
      if (walk == atrium::state::ShadowWalk::whole)
        std::printf("(next row: the walk found a quarter changed and left it to diff())\n");
      if (walk == atrium::state::ShadowWalk::failed)
        std::printf("(next row: the shadow walk failed; the column is diff()'s)\n");
      const double shadow = median_us([&] {
        ops.clear();
        (void)atrium::state::diff_by_shadow(room.L, 1, 2, room.mirror, ops);
      });
      const double other = median_us([&] {
        ops.clear();
        (void)atrium::state::diff(room.L, 1, room.mirror_other_order, ops);
      });
      const double by_keys = median_us([&] {
        ops.clear();
        (void)atrium::state::diff_keys(room.L, 1, room.mirror, keys, ops);
      });
      std::printf("| %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %zu | %.1f | %.0f |\n", n,
                  changed, full, full * 1000 / n, shadow, shadow * 1000 / n, other, by_keys,
                  op_count, floor, convert);
    }
  }
}

// The field scenario (bench/rooms/field.lua): state {players = N entries {x, y, t}}; one
// entry is a new table with all three changed, as setIn({"players", key}, {...}) leaves it.
// diff_paths over that one path (what a setIn-only commit runs) against diff of the whole
// state (what a hook that read self.state runs), and the bytes of the ops either way.
void field_table() {
  std::printf("\nField: state {players = N entries {x, y, t}}; one entry replaced by a new table "
              "with all three changed.\n\n");
  std::printf("| players | diff_paths (setIn) us | diff (full scan) us | by shadow us | ops | "
              "op bytes | bytes as 3 member ops |\n");
  std::printf("|--:|--:|--:|--:|--:|--:|--:|\n");
  for (const int n : {1000, 10000, 100000}) {
    lua_State* L = luaL_newstate();
    atrium::script::init_lua_json(L);
    Value players = Value::object();
    for (int i = 0; i < n; ++i) {
      Value e = Value::object();
      e.set("x", i);
      e.set("y", i);
      e.set("t", 1700000000000.0 + i);
      players.set("c" + std::to_string(i), std::move(e));
    }
    Value state = Value::object();
    state.set("players", std::move(players));
    atrium::script::push_value(L, state);
    const Value mirror = atrium::script::to_value(L, 1, "state").value();
    lua_pushcfunction(L, luaopen_base);
    lua_call(L, 0, 0);
    lua_settop(L, 1);
    atrium::state::push_shadow(L, mirror);            // stack index 2
    const std::string key = "c" + std::to_string(n / 2);
    lua_getfield(L, 1, "players");
    lua_createtable(L, 0, 3);
    for (const char* field : {"x", "y", "t"}) {
      lua_pushnumber(L, field[0] == 't' ? 1700000012345.0 : 12345);
      lua_setfield(L, -2, field);
    }
    lua_setfield(L, -2, key.c_str());
    lua_pop(L, 1);
    const std::vector<atrium::state::Path> paths = {{"players", key}};
    std::vector<atrium::state::Op> ops;
    const double by_path = median_us([&] {
      ops.clear();
      (void)atrium::state::diff_paths(L, 1, mirror, paths, ops);
    });
    const double full = median_us([&] {
      ops.clear();
      (void)atrium::state::diff(L, 1, mirror, ops);
    });
    const double shadow = median_us([&] {
      ops.clear();
      (void)atrium::state::diff_by_shadow(L, 1, 2, mirror, ops);
    });
    std::string text;
    atrium::state::write_ops(ops, text);
    std::vector<atrium::state::Op> members;
    for (const char* field : {"x", "y", "t"}) {
      members.push_back({atrium::state::OpKind::replace, "/players/" + key + "/" + field,
                         Value(field[0] == 't' ? 1700000012345.0 : 12345)});
    }
    std::string member_text;
    atrium::state::write_ops(members, member_text);
    std::printf("| %d | %.2f | %.0f | %.0f | %zu | %zu | %zu |\n", n, by_path, full, shadow,
                ops.size(), text.size(), member_text.size());
    lua_close(L);
  }
}

// The writer choice: ours (appends to a std::string) against RapidJSON's Writer walking
// the same json::Value, on the 10,000-entry state; and parse of that text.
void write_rapidjson(const Value& v, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  switch (v.kind()) {
    case Value::Kind::null: w.Null(); break;
    case Value::Kind::boolean: w.Bool(v.as_bool()); break;
    case Value::Kind::number: {
      const double d = v.as_number();
      if (std::fabs(d) < 9007199254740992.0 && d == std::trunc(d)) {
        w.Int64(static_cast<int64_t>(d));
      } else {
        w.Double(d);
      }
      break;
    }
    case Value::Kind::string:
      w.String(v.as_string().data(), static_cast<rapidjson::SizeType>(v.as_string().size()));
      break;
    case Value::Kind::array:
      w.StartArray();
      for (const Value& item : v.items()) write_rapidjson(item, w);
      w.EndArray();
      break;
    case Value::Kind::object:
      w.StartObject();
      for (const auto& [k, m] : v.members()) {
        w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
        write_rapidjson(m, w);
      }
      w.EndObject();
      break;
  }
}

void codec_table() {
  Value state = Value::object();
  for (int i = 0; i < 10000; ++i) {
    Value e = entry(i);
    e.set("x", i + 0.25);                           // a fraction: the shortest-double path
    state.set(key_of(i), std::move(e));
  }
  const std::string text = atrium::json::to_json(state);
  std::string out;
  const double ours = median_us([&] {
    out.clear();
    atrium::json::write(state, out);
  });
  rapidjson::StringBuffer buffer;
  const double theirs = median_us([&] {
    buffer.Clear();
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    write_rapidjson(state, w);
  });
  const double parse = median_us([&] { (void)atrium::json::parse(text); });
  std::printf("\nCodec, the same 10,000-entry state (%zu bytes of JSON), median us:\n\n",
              text.size());
  std::printf("| json::write | RapidJSON Writer | json::parse |\n|--:|--:|--:|\n");
  std::printf("| %.0f | %.0f | %.0f |\n", ours, theirs, parse);
}

}  // namespace

// Usage: diff_bench [objects|numbers|field|codec]...  (no argument: all four tables)
int main(int argc, char** argv) {
  const auto wanted = [&](std::string_view table) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i) {
      if (table == argv[i]) return true;
    }
    return false;
  };
  std::printf("Diff. Median thread-CPU us per call. ns/entry = diff / N. 'other order': mirror\n");
  std::printf("members not in lua_next order (the cursor misses, every key goes through the\n");
  std::printf("index). 'API floor': lua_next over every table reading each key and value,\n");
  std::printf("comparing nothing. to_value: converting the whole state, for scale.\n");
  if (wanted("objects")) diff_table(false);
  if (wanted("numbers")) diff_table(true);
  if (wanted("field")) field_table();
  if (wanted("codec")) codec_table();
  return 0;
}
