// self:setIn(path, value): a write that marks only its path changed, so the commit diffs
// that entry alone (docs/rooms.md "How the server finds what changed").
#include "engine_harness.hpp"
#include "state/op.hpp"

using namespace atrium;
using namespace atrium::test;

namespace {

const char* kField = R"(
local F = {
  defaultState = { players = {}, list = atrium.array({ { a = 1 }, { a = 2 } }), n = 0 },
  options = { patchRate = 10 },
  actions = {},
}
local kept                -- a state table kept from an earlier hook (docs: don't do this)
function F:onJoin(ctx)
  self:setIn({ "players", ctx.client }, { x = 0, y = 0 })
end
function F.actions.move(self, ctx, x, y)
  self:setIn({ "players", ctx.client }, { x = x, y = y })
end
function F.actions.set(self, ctx, path, value)
  self:setIn(path, value)
end
function F.actions.setThenFail(self, ctx, path, value)
  self:setIn(path, value)
  error("after setIn")
end
function F.actions.twice(self)
  self:setIn({ "n" }, 1)
  self:setIn({ "n" }, 2)
end
function F.actions.keep(self)
  kept = self.state
end
function F.actions.sneak(self, ctx, v)
  kept.n = v                                        -- not through self: not looked for
  self:setIn({ "players", ctx.client, "x" }, v)
end
function F.actions.mixed(self)
  self:setIn({ "n" }, 7)
  self.state.direct = true
end
function F.actions.setFunction(self)
  self:setIn({ "f" }, print)
end
function F.actions.setNaN(self)
  self:setIn({ "players", "nan" }, { x = 0/0 })
end
return F
)";

json::Value J(std::string_view text) {
  auto v = json::parse(text);
  REQUIRE(v.ok());
  return std::move(v).value();
}

// A field:1 room with member a (c1), whose replay of the patches is `state`.
struct Field {
  TempRooms rooms;
  std::unique_ptr<Harness> h;
  FakeClient* a = nullptr;
  json::Value state;                                // a's replay of the patches
  double seq = 0;

  Field() {
    rooms.write("field.lua", kField);
    h = std::make_unique<Harness>(rooms);
    a = &h->connect();
    auto join = h->request(*a, R"({"op":"join","room":"field:1"})");
    REQUIRE(ok(join));
    state = *result(join).get_object("state");
    seq = result(join).find("seq")->as_number();
  }

  // Calls an action of a's, lets the patch out, and returns its ops (null when no patch
  // came), after applying them to a's replay.
  json::Value call(const std::string& method, const std::string& args = "[]") {
    auto reply = h->request(*a, R"({"op":"call","room":"field:1","method":")" + method +
                                    R"(","args":)" + args + "}");
    REQUIRE_MESSAGE(ok(reply), json::to_json(reply));
    return flush();
  }

  json::Value flush() {
    h->advance(25);
    json::Value patch = a->last("patch");
    if (patch.is_null()) return {};
    CHECK(patch.find("seq")->as_number() == seq + 1);
    seq = patch.find("seq")->as_number();
    replay(*patch.get_array("ops"));
    return *patch.get_array("ops");
  }

  // Applies a patch's ops to the replay, with the engine's own applier.
  void replay(const json::Value& ops) {
    std::vector<state::Op> list;
    for (const json::Value& o : ops.items()) {
      const std::string& kind = *o.get_string("op");
      const state::OpKind k = kind == "add"      ? state::OpKind::add
                              : kind == "remove" ? state::OpKind::remove
                                                 : state::OpKind::replace;
      const json::Value* value = o.find("value");
      list.push_back(state::Op{k, *o.get_string("path"), value ? *value : json::Value()});
    }
    REQUIRE(state::apply_patch(state, list).ok());
  }

  std::string fails(const std::string& method, const std::string& args = "[]") {
    auto reply = h->request(*a, R"({"op":"call","room":"field:1","method":")" + method +
                                    R"(","args":)" + args + "}");
    CHECK(error_code(reply) == "script_error");
    return error_where(reply) + ": " + error_message(reply);  // where and the bare message
  }

  json::Value server_state() { return *h->engine->room("field:1")->get_object("state"); }
};

}  // namespace

TEST_CASE("setIn: a move is one replace of the member's entry; the replay is the server's state") {
  Field f;
  CHECK(*f.state.get_object("players") == J(R"({"c1":{"x":0,"y":0}})"));   // from onJoin
  auto& b = f.h->connect();
  REQUIRE(ok(f.h->request(b, R"({"op":"join","room":"field:1"})")));
  CHECK(f.flush() == J(R"([{"op":"add","path":"/players/c2","value":{"x":0,"y":0}}])"));
  CHECK(f.call("move", "[3, 4]") ==
        J(R"([{"op":"replace","path":"/players/c1","value":{"x":3,"y":4}}])"));
  CHECK(f.call("move", "[5, 4]") == J(R"([{"op":"replace","path":"/players/c1/x","value":5}])"));
  CHECK(f.state == f.server_state());
}

TEST_CASE("setIn leaves the state unexposed: only its path is diffed") {
  Field f;
  f.flush();
  CHECK(f.call("keep").is_null());
  // n changed through a kept table: the commit looks only at setIn's path...
  CHECK(f.call("sneak", "[5]") ==
        J(R"([{"op":"replace","path":"/players/c1/x","value":5}])"));
  // ...and a hook that reads self.state finds it.
  const json::Value ops = f.call("mixed");
  REQUIRE(ops.is_array());
  CHECK(ops.size() == 2);
  for (const json::Value& op : ops.items()) {
    CHECK((op == J(R"({"op":"replace","path":"/n","value":7})") ||
           op == J(R"({"op":"add","path":"/direct","value":true})")));
  }
  CHECK(f.state == f.server_state());
}

TEST_CASE("setIn removes with nil, creates missing tables, and follows array items") {
  Field f;
  f.flush();
  CHECK(f.call("set", R"([["a", "b", "c"], 1])") ==
        J(R"([{"op":"add","path":"/a","value":{"b":{"c":1}}}])"));
  CHECK(f.call("set", R"([["a", "b", "d"], 2])") ==
        J(R"([{"op":"add","path":"/a/b/d","value":2}])"));
  CHECK(f.call("set", R"([["list", 2, "a"], 5])") ==
        J(R"([{"op":"replace","path":"/list/1/a","value":5}])"));
  CHECK(f.call("set", R"([["list", 3], "c"])") ==
        J(R"([{"op":"add","path":"/list/2","value":"c"}])"));
  CHECK(f.call("set", R"([["a", "b"], null])") == J(R"([{"op":"remove","path":"/a/b"}])"));
  CHECK(f.call("set", R"([["players", "c1"]])") ==
        J(R"([{"op":"remove","path":"/players/c1"}])"));
  CHECK(f.call("set", R"([["nothing", "here"]])").is_null());   // nil creates no tables
  CHECK(f.state == f.server_state());
}

TEST_CASE("setIn twice on one path gives one op") {
  Field f;
  f.flush();
  CHECK(f.call("twice") == J(R"([{"op":"replace","path":"/n","value":2}])"));
}

TEST_CASE("a hook that fails after setIn changes nothing") {
  Field f;
  f.flush();
  const json::Value before = f.server_state();
  const std::string created = f.fails("setThenFail", R"([["a", "b", "c"], 1])");
  CHECK(created.find("after setIn") != std::string::npos);
  const std::string changed = f.fails("setThenFail", R"([["players", "c1", "x"], 9])");
  CHECK(changed.find("after setIn") != std::string::npos);
  CHECK(f.flush().is_null());
  CHECK(f.server_state() == before);
  // The Lua side was restored too: the tables setIn created are gone, x is back.
  CHECK(f.call("set", R"([["a", "x"], 1])") == J(R"([{"op":"add","path":"/a","value":{"x":1}}])"));
  CHECK(f.call("set", R"([["players", "c1", "x"], 0])").is_null());
  CHECK(f.state == f.server_state());
}

TEST_CASE("setIn names what is wrong with its path, at the script's line") {
  Field f;
  f.flush();
  CHECK(f.fails("set", R"([["players", "c1", "x", "deep"], 1])") ==
        "rooms/field.lua:15: setIn: state.players.c1.x is a number, not a table");
  CHECK(f.fails("set", R"([["list", 1, "a", 2], 1])") ==
        "rooms/field.lua:15: setIn: state.list[1].a is a number, not a table");
  CHECK(f.fails("set", R"([[], 1])").find("setIn: the path must be a non-empty array") !=
        std::string::npos);
  CHECK(f.fails("set", R"(["players", 1])").find("setIn: the path must be") != std::string::npos);
  CHECK(f.fails("set", R"([["a", true], 1])") ==
        "rooms/field.lua:15: setIn: path[2] must be a string or a positive integer, not a boolean");
  CHECK(f.fails("set", R"([["list", 0], 1])") ==
        "rooms/field.lua:15: setIn: path[2] must be a string or a positive integer, not 0");
  CHECK(f.fails("set", R"([["list", 1.5], 1])") ==
        "rooms/field.lua:15: setIn: path[2] must be a string or a positive integer, not 1.5");
  CHECK(f.flush().is_null());
}

TEST_CASE("what setIn wrote must keep the state rules") {
  Field f;
  f.flush();
  CHECK(f.fails("setFunction").find("state.f: a function is not allowed in state") !=
        std::string::npos);
  CHECK(f.fails("setNaN").find("state.players.nan.x: NaN is not allowed in state") !=
        std::string::npos);
  CHECK(f.flush().is_null());
  CHECK(f.server_state().find("f") == nullptr);
}
