// RFC 6902 ops: the JSON written into patch frames, and apply_patch on a mirror.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "json/codec.hpp"
#include "state/op.hpp"

using atrium::ErrorCode;
using atrium::json::Value;
using atrium::state::apply_patch;
using atrium::state::Op;
using atrium::state::OpKind;
using atrium::state::write_ops;

namespace {

Value json(std::string_view text) {
  auto r = atrium::json::parse(text);
  REQUIRE(r.ok());
  return std::move(r).value();
}

Op op_add(std::string path, std::string_view value) { return Op{OpKind::add, std::move(path), json(value)}; }
Op op_replace(std::string path, std::string_view value) {
  return Op{OpKind::replace, std::move(path), json(value)};
}
Op op_remove(std::string path) { return Op{OpKind::remove, std::move(path), Value()}; }

// Applies the ops to `doc` and returns the result as JSON text, or the error message.
std::string applied(std::string_view doc, const std::vector<Op>& ops) {
  Value v = json(doc);
  const auto status = apply_patch(v, ops);
  if (!status) {
    CHECK(status.error().code == ErrorCode::bad_request);
    return "error: " + status.error().message;
  }
  return atrium::json::to_json(v);
}

}  // namespace

TEST_CASE("ops are written as comma-separated objects, ready to concatenate") {
  std::string out;
  write_ops({op_add("/a~1b", R"({"x":[1,"y"]})"), op_remove("/list/0"), op_replace("", "3")}, out);
  CHECK(out == R"({"op":"add","path":"/a~1b","value":{"x":[1,"y"]}},)"
               R"({"op":"remove","path":"/list/0"},{"op":"replace","path":"","value":3})");
  std::string empty;
  write_ops({}, empty);
  CHECK(empty.empty());
  std::string quoted;
  write_ops({op_add("/\"q\"", "null")}, quoted);
  CHECK(quoted == R"({"op":"add","path":"/\"q\"","value":null})");
}

TEST_CASE("written ops parse back as an RFC 6902 patch array") {
  std::string text = "[";
  write_ops({op_add("/a", "1"), op_remove("/b")}, text);
  text += "]";
  CHECK(json(text) == json(R"([{"op":"add","path":"/a","value":1},{"op":"remove","path":"/b"}])"));
}

TEST_CASE("add puts a member in an object or an item in an array") {
  CHECK(applied(R"({"foo":"bar"})", {op_add("/baz", "\"qux\"")}) == R"({"foo":"bar","baz":"qux"})");
  CHECK(applied(R"({"foo":["bar","baz"]})", {op_add("/foo/1", "\"qux\"")}) ==
        R"({"foo":["bar","qux","baz"]})");
  CHECK(applied(R"({"a":[1]})", {op_add("/a/1", "2")}) == R"({"a":[1,2]})");   // at the end
  CHECK(applied(R"({"a":[1]})", {op_add("/a/-", "2")}) == R"({"a":[1,2]})");   // "-" is the end
  CHECK(applied(R"({"a":[]})", {op_add("/a/0", "[]")}) == R"({"a":[[]]})");
}

TEST_CASE("add on an existing member replaces it (RFC 6902 4.1)") {
  CHECK(applied(R"({"a":1,"b":2})", {op_add("/a", "{}")}) == R"({"a":{},"b":2})");
}

TEST_CASE("remove takes out a member or an item, shifting the rest down") {
  CHECK(applied(R"({"baz":"qux","foo":"bar"})", {op_remove("/baz")}) == R"({"foo":"bar"})");
  CHECK(applied(R"({"foo":["bar","qux","baz"]})", {op_remove("/foo/1")}) == R"({"foo":["bar","baz"]})");
}

TEST_CASE("replace changes an existing value, and the empty path is the whole document") {
  CHECK(applied(R"({"baz":"qux","foo":"bar"})", {op_replace("/baz", "\"boo\"")}) ==
        R"({"baz":"boo","foo":"bar"})");
  CHECK(applied(R"({"a":[1,2]})", {op_replace("/a/1", R"({"k":true})")}) == R"({"a":[1,{"k":true}]})");
  CHECK(applied(R"({"a":1})", {op_replace("", "[1]")}) == "[1]");
  CHECK(applied(R"({"a":1})", {op_add("", R"({"b":2})")}) == R"({"b":2})");
}

TEST_CASE("escaped and unusual keys resolve to their members") {
  CHECK(applied(R"({"a/b":{"m~n":1},"":{"":2}})",
                {op_replace("/a~1b/m~0n", "10"), op_replace("//", "20")}) ==
        R"({"a/b":{"m~n":10},"":{"":20}})");
  CHECK(applied(R"({"0":{"1":"x"}})", {op_replace("/0/1", "\"y\"")}) == R"({"0":{"1":"y"}})");
}

TEST_CASE("ops apply in order, each to the result of the ones before") {
  CHECK(applied(R"({"log":["a","b","c","d"]})", {op_remove("/log/0"), op_add("/log/3", "\"e\"")}) ==
        R"({"log":["b","c","d","e"]})");
  CHECK(applied("{}", {op_add("/a", "{}"), op_add("/a/b", "[]"), op_add("/a/b/0", "1"), op_remove("/a/b/0")}) ==
        R"({"a":{"b":[]}})");
}

TEST_CASE("a path that does not resolve fails with bad_request and names the op") {
  CHECK(applied(R"({"a":1})", {op_remove("/b")}) == "error: patch op 0 (remove /b): no such member");
  CHECK(applied(R"({"a":1})", {op_add("/a", "2"), op_replace("/x/y", "1")}) ==
        "error: patch op 1 (replace /x/y): path does not resolve");
  CHECK(applied(R"({"a":1})", {op_add("/a/b", "1")}) ==
        "error: patch op 0 (add /a/b): path goes through a scalar");
  CHECK(applied(R"({"a":[1]})", {op_add("/a/2", "1")}) ==
        "error: patch op 0 (add /a/2): array index out of range");
  CHECK(applied(R"({"a":[1]})", {op_remove("/a/1")}) ==
        "error: patch op 0 (remove /a/1): array index out of range");
  CHECK(applied(R"({"a":[]})", {op_replace("/a/0", "1")}) ==
        "error: patch op 0 (replace /a/0): array index out of range");
  CHECK(applied(R"({"a":[1,2]})", {op_remove("/a/01")}) ==
        "error: patch op 0 (remove /a/01): bad array index");
  CHECK(applied(R"({"a":[1]})", {op_remove("/a/-")}) ==
        "error: patch op 0 (remove /a/-): bad array index");
  CHECK(applied(R"({"a":[[1]]})", {op_remove("/a/x/0")}) ==
        "error: patch op 0 (remove /a/x/0): path does not resolve");
  CHECK(applied(R"({"a":1})", {op_remove("")}) == "error: patch op 0 (remove ): cannot remove the root");
  CHECK(applied(R"({"a":1})", {op_remove("a")}) ==
        "error: patch op 0 (remove a): path must start with '/'");
  CHECK(applied(R"({"a":1})", {op_remove("/a~2")}) == "error: patch op 0 (remove /a~2): bad escape in path");
}

TEST_CASE("applying a patch to a large object keeps every member reachable") {
  Value doc = Value::object();
  for (int i = 0; i < 2000; ++i) doc.set("p" + std::to_string(i), i);
  std::vector<Op> ops;
  for (int i = 0; i < 2000; i += 3) ops.push_back(op_remove("/p" + std::to_string(i)));
  ops.push_back(op_add("/new", "1"));
  REQUIRE(apply_patch(doc, ops).ok());
  CHECK(doc.size() == 2000 - 667 + 1);
  for (int i = 0; i < 2000; ++i) {
    const Value* v = doc.find("p" + std::to_string(i));
    if (i % 3 == 0) {
      CHECK(v == nullptr);
    } else {
      REQUIRE(v != nullptr);
      CHECK(v->as_number() == i);
    }
  }
}

TEST_CASE("write_op writes short ops, kilobyte values and large values alike") {
  // Each size takes another path through write_op (the stack, the thread's buffer, the
  // string); all of them write what write() writes inside the op.
  for (const std::size_t members : {1, 100, 2000}) {
    Value obj = Value::object();
    for (std::size_t i = 0; i < members; ++i)
      obj.set("k" + std::to_string(i), Value(static_cast<double>(i) + 0.25));
    const std::string value = atrium::json::to_json(obj);
    std::string out = "X";
    write_ops({Op{OpKind::replace, "/a~1b/c\"d", obj}, Op{OpKind::remove, "/e", Value()}}, out);
    CHECK(out == "X{\"op\":\"replace\",\"path\":\"/a~1b/c\\\"d\",\"value\":" + value +
                     "},{\"op\":\"remove\",\"path\":\"/e\"}");
  }
  std::string out;
  write_ops({Op{OpKind::add, "/s", Value(std::string(300, 'x'))}}, out);  // a long string
  CHECK(out == "{\"op\":\"add\",\"path\":\"/s\",\"value\":\"" + std::string(300, 'x') + "\"}");
}
