// collapse_repeated_ops: repeated ops on one member inside one patch interval become the
// last of them, and the collapsed patches give every state the uncollapsed ones give.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "json/codec.hpp"
#include "state/collapse.hpp"
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

Op op(OpKind kind, std::string path, Value value = Value()) { return Op{kind, std::move(path), std::move(value)}; }

std::string written(const std::vector<Op>& ops) {
  std::string out;
  atrium::state::write_ops(ops, out);
  return out;
}

Value applied(Value doc, const std::vector<Op>& ops) {
  REQUIRE(atrium::state::apply_patch(doc, ops));
  return doc;
}

}  // namespace

TEST_CASE("five replaces of /turn are one, at the last one's place") {
  std::vector<Op> ops;
  for (int i = 0; i < 5; ++i) {
    ops.push_back(op(OpKind::replace, "/turn", Value(double(i))));
    ops.push_back(op(OpKind::add, "/log/-", Value(double(i))));
  }
  const Value before = parse(R"({"turn":-1,"log":[]})");
  const Value expected = applied(before, ops);
  atrium::state::collapse_repeated_ops(ops);
  CHECK(written(ops) ==
        R"({"op":"add","path":"/log/-","value":0},{"op":"add","path":"/log/-","value":1},)"
        R"({"op":"add","path":"/log/-","value":2},{"op":"add","path":"/log/-","value":3},)"
        R"({"op":"replace","path":"/turn","value":4},{"op":"add","path":"/log/-","value":4})");
  CHECK(applied(before, ops) == expected);
}

TEST_CASE("add then replace is one add; add then remove is nothing; replace then remove is a remove") {
  std::vector<Op> ops = {op(OpKind::add, "/a", Value(1.0)), op(OpKind::replace, "/a", Value(2.0)),
                         op(OpKind::add, "/b", Value(1.0)), op(OpKind::remove, "/b"),
                         op(OpKind::replace, "/c", Value(5.0)), op(OpKind::remove, "/c"),
                         op(OpKind::remove, "/d"), op(OpKind::add, "/d", Value(7.0))};
  const Value before = parse(R"({"c":0,"d":0})");
  const Value expected = applied(before, ops);
  atrium::state::collapse_repeated_ops(ops);
  CHECK(written(ops) == R"({"op":"add","path":"/a","value":2},{"op":"remove","path":"/c"},)"
                        R"({"op":"replace","path":"/d","value":7})");
  CHECK(applied(before, ops) == expected);
}

TEST_CASE("an op on an ancestor or under the path keeps the run apart; array paths never collapse") {
  std::vector<Op> ops = {op(OpKind::replace, "/p/x", Value(1.0)), op(OpKind::replace, "/p", parse(R"({"x":0})")),
                         op(OpKind::replace, "/p/x", Value(2.0)),
                         op(OpKind::replace, "/q", parse(R"({"y":1})")), op(OpKind::add, "/q/z", Value(1.0)),
                         op(OpKind::replace, "/q", parse(R"({"y":2})")),
                         op(OpKind::replace, "/list/1/name", Value("a")), op(OpKind::add, "/list/0", Value(0.0)),
                         op(OpKind::replace, "/list/1/name", Value("b"))};
  const Value before = parse(R"({"p":{"x":0},"q":{},"list":[{"name":""},{"name":""}]})");
  const Value expected = applied(before, ops);
  const std::size_t n = ops.size();
  atrium::state::collapse_repeated_ops(ops);
  CHECK(ops.size() == n);   // every run was broken, or is on an array item
  CHECK(applied(before, ops) == expected);
}

// Random intervals over a small set of paths (so that they repeat), each op valid where it
// lands and `add` on an object member only when it is absent, as the engine's differ makes
// them: each interval's collapsed ops give the state its uncollapsed ops give, interval
// after interval, in fewer ops where paths repeated.
TEST_CASE("random intervals: the collapsed stream gives every state the uncollapsed one gives") {
  std::uint64_t seed = 0x2545F4914F6CDD1Dull;
  auto next = [&seed](std::uint64_t n) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed % n;
  };
  const std::vector<std::string> keys = {"a", "b", "c", "d", "0", "e~1f"};
  Value state = parse(R"({"a":1,"list":[1,2,3],"o":{"a":{"b":1}}})");
  Value collapsed_state = state;
  std::size_t before_ops = 0, after_ops = 0;
  for (int interval = 0; interval < 3000; ++interval) {
    std::vector<Op> ops;
    Value now = state;
    const std::size_t n = 1 + next(12);
    for (std::size_t k = 0; k < n; ++k) {
      // A path: one or two object levels under the root or under /o, or an array item.
      std::string path;
      const std::uint64_t where = next(10);
      if (where < 2) {
        path = "/list/" + std::to_string(next(4));
      } else if (where < 5) {
        path = "/o/" + keys[next(keys.size())];
        if (next(3) == 0) path += "/" + keys[next(keys.size())];
      } else {
        path = "/" + keys[next(3)];
      }
      Value probe = now;
      const bool exists = static_cast<bool>(atrium::state::apply_patch(probe, {op(OpKind::replace, path, Value(0.0))}));
      const bool in_list = path.rfind("/list/", 0) == 0;
      Op o;
      const Value v = next(4) == 0 ? parse(R"({"b":2})") : Value(double(next(100)));
      switch (next(3)) {
        case 0: o = exists ? op(OpKind::replace, path, v) : op(OpKind::add, path, v); break;
        case 1: o = exists ? op(OpKind::remove, path) : op(OpKind::add, path, v); break;
        default: o = exists && !in_list ? op(OpKind::replace, path, v) : op(OpKind::add, path, v); break;
      }
      Value trial = now;
      if (!atrium::state::apply_patch(trial, {o})) continue;   // its parent is not there
      now = std::move(trial);
      ops.push_back(std::move(o));
    }
    before_ops += ops.size();
    std::vector<Op> collapsed = ops;
    atrium::state::collapse_repeated_ops(collapsed);
    after_ops += collapsed.size();
    REQUIRE(collapsed.size() <= ops.size());
    state = applied(state, ops);
    Value c = collapsed_state;
    const auto ok = atrium::state::apply_patch(c, collapsed);
    REQUIRE_MESSAGE(ok, "interval " << interval << ": " << written(collapsed) << " from " << written(ops));
    collapsed_state = std::move(c);
    REQUIRE_MESSAGE(collapsed_state == state, "interval " << interval << ": " << written(collapsed)
                                                          << " from " << written(ops));
  }
  MESSAGE(before_ops << " ops collapsed to " << after_ops);
  CHECK(after_ops < before_ops * 9 / 10);   // the walk did repeat paths
}
