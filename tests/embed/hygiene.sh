#!/usr/bin/env bash
# The embedding contract's hygiene (docs/embedding.md): include/atrium/atrium.hpp compiles
# alone (C++17 and C++20, with and without exceptions and RTTI, warnings as errors, no
# third-party header on the include path); a host built with -fno-exceptions -fno-rtti
# links the static and the shared libatrium and runs a room; the shared library exports
# only atrium symbols. Prints "# pass N" / "# fail N" as node:test's TAP does.
#   bash tests/embed/hygiene.sh [BUILD_DIR]   (default: build)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${1:-build}
cxx=${CXX:-c++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() {  # name, command...
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then
    pass=$((pass + 1)); echo "ok - $name"
  else
    fail=$((fail + 1)); echo "not ok - $name"; sed 's/^/  /' "$work/out" | head -40
  fi
}

echo '#include <atrium/atrium.hpp>' > "$work/alone.cpp"
for std in c++17 c++20; do
  for flags in "" "-fno-exceptions -fno-rtti"; do
    check "the header compiles alone: -std=$std $flags" \
      "$cxx" -std=$std $flags -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I "$root/include" "$work/alone.cpp"
  done
done

# A host as a game would write it: no exceptions, no RTTI, the public header only.
mkdir -p "$work/rooms"
cat > "$work/rooms/score.lua" <<'LUA'
local S = { defaultState = { points = 0 } }
S.actions = {}
function S.actions.add(self, ctx, n) self.state.points = self.state.points + n; return self.state.points end
return S
LUA
cat > "$work/host.cpp" <<'CPP'
#include <atrium/atrium.hpp>
#include <cstdio>
#include <string>
int main(int, char** argv) {
  atrium::Options o;
  o.rooms_dir = argv[1];
  o.lua_dir = argv[2];
  o.host_clock = true;
  std::string error;
  auto engine = atrium::Engine::create(o, &error);
  if (!engine) { std::fprintf(stderr, "%s\n", error.c_str()); return 1; }
  auto me = engine->connect();
  me->send(R"({"op":"join","room":"score:1","ref":1})");
  me->send(R"({"op":"call","room":"score:1","method":"add","args":[5],"ref":2})");
  engine->step(0);
  for (std::string line; me->receive(line);)
    if (line == R"({"op":"reply","ref":2,"ok":true,"result":5})") return 0;
  return 2;
}
CPP
lib="$root/$build/src/embed"
static_deps=$(echo $(pkg-config --libs luajit libwebsockets libcrypto zlib) $(pkg-config --exists libuv && pkg-config --libs libuv))
check "a -fno-exceptions -fno-rtti host links the static library and plays a room" bash -c "
  $cxx -std=c++17 -fno-exceptions -fno-rtti -Wall -Werror -I '$root/include' '$work/host.cpp' \
    '$lib/libatrium.a' $static_deps -lpthread -o '$work/host-static' && '$work/host-static' '$work/rooms' '$root/lua'"
check "the same host links the shared library and plays a room" bash -c "
  $cxx -std=c++17 -fno-exceptions -fno-rtti -Wall -Werror -I '$root/include' '$work/host.cpp' \
    -L '$lib' -latrium -o '$work/host-shared' && LD_LIBRARY_PATH='$lib' '$work/host-shared' '$work/rooms' '$root/lua'"
# The installed tree, as a host on another machine gets it: headers, libraries, lua/ and
# atrium.pc, found through pkg-config alone.
dest="$root/$build/embed-install"   # kept: examples/embed's binary runs from it
rm -rf "$dest"
check "meson install puts the header, both libraries, lua/ and atrium.pc in place" bash -c "
  DESTDIR='$dest' meson install -C '$root/$build' --quiet --no-rebuild >/dev/null"
pc_file=$(find "$dest" -name atrium.pc | head -n 1)
prefix=$(sed -n 's/^prefix=//p' "$pc_file")
pc() { PKG_CONFIG_PATH=$(dirname "$pc_file") pkg-config --define-variable=prefix="$dest$prefix" "$@" atrium; }
check "a host builds from the installed tree with pkg-config (shared and --static) and plays a room" bash -c "
  $cxx -std=c++17 -fno-exceptions -fno-rtti '$work/host.cpp' $(pc --cflags) $(pc --libs) -o '$work/host-pc' &&
  LD_LIBRARY_PATH='$(pc --variable=libdir)' '$work/host-pc' '$work/rooms' '$(pc --variable=luadir)' &&
  $cxx -std=c++17 -fno-exceptions -fno-rtti '$work/host.cpp' $(pc --cflags --static) \
    '$(pc --variable=libdir)/libatrium.a' $(pc --libs --static | sed 's/-latrium//') \
    -o '$work/host-pc-static' &&
  '$work/host-pc-static' '$work/rooms' '$(pc --variable=luadir)'"
# examples/embed/, built the way its comment says (the e2e suite runs it: embed.test.mjs).
mkdir -p "$root/$build/examples"
check "examples/embed/arena_host.cpp builds from the installed tree" bash -c "
  $cxx -std=c++17 -Wall -Werror '$root/examples/embed/arena_host.cpp' $(pc --cflags) $(pc --libs) \
    -Wl,-rpath,'$(pc --variable=libdir)' -o '$root/$build/examples/arena-host' &&
  rm -rf '$root/$build/examples/lua' && cp -r '$(pc --variable=luadir)' '$root/$build/examples/lua'"
check "tests/embed/equivalence_host.cpp builds from the installed tree" bash -c "
  $cxx -std=c++17 -Wall -Werror -pthread '$root/tests/embed/equivalence_host.cpp' $(pc --cflags) $(pc --libs) \
    -Wl,-rpath,'$(pc --variable=libdir)' -o '$root/$build/examples/equivalence-host'"
check "libatrium.so exports only atrium symbols" bash -c "
  nm -D --defined-only -C '$lib/libatrium.so' | awk '{ \$1 = \"\"; \$2 = \"\"; print }' | sed 's/^ *//' > '$work/exports'
  test -s '$work/exports' && ! grep -v '^atrium::' '$work/exports'"

echo "# pass $pass"
echo "# fail $fail"
[ "$fail" -eq 0 ]
