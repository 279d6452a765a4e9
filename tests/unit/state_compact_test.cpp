// write_compact_ops: a patch interval's ops merged where one op says it in fewer bytes,
// always taking the previous state to the same result.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "json/codec.hpp"
#include "state/compact.hpp"
#include "state/op.hpp"

using atrium::json::Value;
using atrium::state::Op;
using atrium::state::OpKind;

namespace {

Value parse(const std::string& text) {
  auto v = atrium::json::parse(text);
  REQUIRE(v);
  return std::move(*v);
}

Op op(OpKind kind, std::string path, Value value = Value()) {
  return Op{kind, std::move(path), std::move(value)};
}

// Applies `ops` (written) to `before` and returns the result.
Value apply_written(const Value& before, const std::string& written) {
  Value ops_json = parse("[" + written + "]");
  std::vector<Op> ops;
  for (const Value& o : ops_json.items()) {
    const std::string kind = o.find("op")->as_string();
    Op x{kind == "add" ? OpKind::add : kind == "remove" ? OpKind::remove : OpKind::replace,
         o.find("path")->as_string(), o.find("value") ? *o.find("value") : Value()};
    ops.push_back(std::move(x));
  }
  Value doc = before;
  REQUIRE(atrium::state::apply_patch(doc, ops));
  return doc;
}

std::string players(int n, int moved_from, int version) {
  std::string s = "{\"round\":1,\"players\":{";
  for (int i = 0; i < n; ++i) {
    if (i) s += ",";
    const int v = i >= moved_from ? version : 0;
    s += "\"c" + std::to_string(i) + "\":{\"x\":" + std::to_string(i + v) + ",\"y\":" +
         std::to_string(v) + ",\"t\":" + std::to_string(1000 * v + i) + "}";
  }
  return s + "}}";
}

// Each moved player's whole entry replaced, one op each: what setIn produces.
std::vector<Op> moves(const Value& now, int n, int moved_from) {
  std::vector<Op> ops;
  const Value& ps = *now.find("players");
  for (int i = moved_from; i < n; ++i) {
    const std::string id = "c" + std::to_string(i);
    ops.push_back(op(OpKind::replace, "/players/" + id, *ps.find(id)));
  }
  return ops;
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a few ops are written as they are") {
  const Value now = parse(players(4, 0, 1));
  std::vector<Op> ops = moves(now, 4, 0);
  std::string compact, plain;
  atrium::state::write_compact_ops(ops, now, compact);
  atrium::state::write_ops(ops, plain);
  CHECK(compact == plain);
}

TEST_CASE("every player moved: one replace of /players, fewer bytes, same result") {
  const Value before = parse(players(200, 200, 0));
  const Value now = parse(players(200, 0, 1));
  std::vector<Op> ops = moves(now, 200, 0);
  std::string compact, plain;
  atrium::state::write_compact_ops(ops, now, compact);
  atrium::state::write_ops(ops, plain);
  CHECK(count(compact, "\"op\"") == 1);
  CHECK(compact.find("\"path\":\"/players\"") != std::string::npos);
  CHECK(compact.size() < plain.size());
  CHECK(apply_written(before, compact) == now);
}

TEST_CASE("a few players of many moved: the ops stay, the big map is not sent") {
  const Value before = parse(players(1000, 1000, 0));
  const Value now = parse(players(1000, 980, 1));
  std::vector<Op> ops = moves(now, 1000, 980);
  std::string compact, plain;
  atrium::state::write_compact_ops(ops, now, compact);
  atrium::state::write_ops(ops, plain);
  CHECK(compact == plain);
  CHECK(apply_written(before, compact) == now);
}

TEST_CASE("field ops of one object merge into that object, other ops keep their order") {
  Value before = parse(R"({"a":{"k0":0,"k1":0,"k2":0,"k3":0,"k4":0,"k5":0,"k6":0,"k7":0,
    "k8":0,"k9":0,"k10":0,"k11":0,"k12":0,"k13":0,"k14":0,"k15":0,"k16":0},"b":1,"c":[1,2]})");
  std::vector<Op> ops;
  ops.push_back(op(OpKind::replace, "/b", Value(2.0)));
  for (int i = 0; i < 17; ++i)
    ops.push_back(op(OpKind::replace, "/a/k" + std::to_string(i), Value(1.0)));
  ops.push_back(op(OpKind::add, "/c/2", Value(3.0)));
  ops.push_back(op(OpKind::remove, "/b"));
  Value now = before;
  REQUIRE(atrium::state::apply_patch(now, ops));
  std::string compact;
  atrium::state::write_compact_ops(ops, now, compact);
  CHECK(count(compact, "\"op\"") == 4);
  CHECK(compact.find("\"path\":\"/a\"") != std::string::npos);
  CHECK(compact.find("/b") < compact.find("\"/a\""));      // still the first op
  CHECK(apply_written(before, compact) == now);
}

TEST_CASE("a member added in the interval is merged with add, one removed at the end is not") {
  Value before = parse(R"({"gone":{"a":1},"x":0})");
  std::vector<Op> ops;
  ops.push_back(op(OpKind::add, "/fresh", parse("{}")));
  for (int i = 0; i < 20; ++i)
    ops.push_back(op(OpKind::add, "/fresh/k" + std::to_string(i), Value(double(i))));
  for (int i = 0; i < 20; ++i)
    ops.push_back(op(OpKind::add, "/gone/k" + std::to_string(i), Value(double(i))));
  ops.push_back(op(OpKind::remove, "/gone"));
  Value now = before;
  REQUIRE(atrium::state::apply_patch(now, ops));
  std::string compact;
  atrium::state::write_compact_ops(ops, now, compact);
  CHECK(compact.find("{\"op\":\"add\",\"path\":\"/fresh\",\"value\":{") != std::string::npos);
  CHECK(count(compact, "/fresh/") == 0);
  CHECK(count(compact, "/gone/") == 20);
  CHECK(apply_written(before, compact) == now);
}

TEST_CASE("an op on an ancestor keeps the ops under it as they are") {
  Value before = parse(R"({"p":{"q":{}}})");
  std::vector<Op> ops;
  for (int i = 0; i < 20; ++i)
    ops.push_back(op(OpKind::add, "/p/q/k" + std::to_string(i), Value(double(i))));
  ops.push_back(op(OpKind::replace, "/p", parse(R"({"q":{"z":1}})")));
  for (int i = 0; i < 20; ++i)
    ops.push_back(op(OpKind::add, "/p/q/m" + std::to_string(i), Value(double(i))));
  Value now = before;
  REQUIRE(atrium::state::apply_patch(now, ops));
  std::string compact;
  atrium::state::write_compact_ops(ops, now, compact);
  CHECK(apply_written(before, compact) == now);
  // /p carries 41 ops and may merge as a whole; /p/q must not merge on its own.
  CHECK(compact.find("\"path\":\"/p/q\"") == std::string::npos);
}

TEST_CASE("escaped keys merge under their escaped pointer") {
  Value before = parse(R"({"a/b":{}, "t~": 0})");
  std::vector<Op> ops;
  for (int i = 0; i < 20; ++i)
    ops.push_back(op(OpKind::add, "/a~1b/k" + std::to_string(i), Value(double(i))));
  Value now = before;
  REQUIRE(atrium::state::apply_patch(now, ops));
  std::string compact;
  atrium::state::write_compact_ops(ops, now, compact);
  CHECK(compact.find("\"path\":\"/a~1b\"") != std::string::npos);
  CHECK(apply_written(before, compact) == now);
}

TEST_CASE("random intervals: the compacted patch always gives the same state") {
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed](std::uint64_t n) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed % n;
  };
  int merged = 0;
  for (int round = 0; round < 300; ++round) {
    Value before = parse(players(static_cast<int>(5 + next(60)), 0, 0));
    Value now = before;
    std::vector<Op> ops;
    const std::size_t n = 1 + next(120);
    for (std::size_t k = 0; k < n; ++k) {
      const std::string id = "/players/c" + std::to_string(next(70));
      const bool exists = [&] {
        Value probe = now;
        return static_cast<bool>(atrium::state::apply_patch(probe, {op(OpKind::replace, id, Value(0.0))}));
      }();
      Op o;
      switch (next(5)) {
        case 0: o = op(OpKind::add, id, parse("{\"x\":1}")); break;
        case 1: o = exists ? op(OpKind::remove, id) : op(OpKind::add, id, Value(1.0)); break;
        case 2: o = exists ? op(OpKind::replace, id, Value(double(k))) : op(OpKind::add, id, Value(2.0)); break;
        case 3: o = op(OpKind::replace, "/round", Value(double(k))); break;
        default: o = exists && now.find("players")->find(id.substr(9))->is_object()
                         ? op(OpKind::add, id + "/y", Value(double(k)))
                         : op(OpKind::add, id, parse("{\"y\":0}"));
      }
      REQUIRE(atrium::state::apply_patch(now, {o}));
      ops.push_back(std::move(o));
    }
    std::string compact, plain;
    atrium::state::write_compact_ops(ops, now, compact);
    atrium::state::write_ops(ops, plain);
    CHECK(compact.size() <= plain.size());
    CHECK(apply_written(before, compact) == now);
    merged += compact.size() < plain.size();
  }
  CHECK(merged > 30);  // the rounds do exercise merging, not only the pass-through
}
