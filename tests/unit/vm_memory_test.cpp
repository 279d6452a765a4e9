// The VM's memory accounting and when the engine collects (script/vm.hpp).
#include <doctest/doctest.h>
#include <lua.hpp>

#include <string>

#include "script/vm.hpp"

using atrium::script::Vm;

namespace {

// n strings of about `bytes` each, made by the current owner, held in a registry table.
int hold_strings(lua_State* L, int n, std::size_t bytes, const std::string& tag) {
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; ++i) {
    const std::string s = std::string(bytes, 'x') + tag + std::to_string(i);
    lua_pushlstring(L, s.data(), s.size());
    lua_rawseti(L, -2, i);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

}  // namespace

TEST_CASE("vm: a room's memory released near the cap asks for a collection, and the collection gives it back") {
  Vm vm(24u << 20, 8u << 20);
  REQUIRE(vm.ok());
  lua_State* L = vm.L();
  vm.collect();
  CHECK_FALSE(vm.wants_collection());  // an empty heap: LuaJIT's own pacing is enough

  // Two rooms of 6 MiB: 12 of the 21 MiB rooms may use (24 less the reserve).
  const auto room_a = vm.new_owner(), room_b = vm.new_owner();
  auto prev = vm.set_owner(room_a);
  const int ref_a = hold_strings(L, 6, 1u << 20, "a");
  vm.set_owner(room_b);
  const int ref_b = hold_strings(L, 6, 1u << 20, "b");
  vm.set_owner(prev);
  CHECK(vm.owner_bytes(room_a) >= (6u << 20));
  CHECK(vm.wants_collection());  // 12 MiB grown since the last collection, past half
  vm.collect();
  CHECK_FALSE(vm.wants_collection());  // all of it is live
  CHECK(vm.bytes_in_use() >= (12u << 20));

  // Room a is destroyed: its references dropped and its owner released.
  luaL_unref(L, LUA_REGISTRYINDEX, ref_a);
  vm.release_owner(room_a);
  CHECK(vm.wants_collection());
  vm.collect();
  CHECK(vm.bytes_in_use() < (7u << 20));
  CHECK_FALSE(vm.wants_collection());  // 6 MiB live, under half
  luaL_unref(L, LUA_REGISTRYINDEX, ref_b);
  (void)prev;
}

TEST_CASE("vm: below half of what rooms may use, collections are left to LuaJIT") {
  Vm vm(64u << 20, 8u << 20);
  REQUIRE(vm.ok());
  lua_State* L = vm.L();
  vm.collect();
  const auto room = vm.new_owner();
  const auto prev = vm.set_owner(room);
  const int ref = hold_strings(L, 4, 1u << 20, "b");
  vm.set_owner(prev);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  vm.release_owner(room);
  CHECK_FALSE(vm.wants_collection());  // 4 MiB of 56: LuaJIT collects long before the cap
}
