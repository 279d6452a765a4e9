// json::Value: kinds, object order and the key index, copies and equality.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <string>

#include "json/value.hpp"

using atrium::json::Value;

TEST_CASE("a default Value is null and each constructor gives its kind") {
  CHECK(Value().is_null());
  CHECK(Value(nullptr).is_null());
  CHECK(Value(true).as_bool());
  CHECK(Value(2.5).as_number() == 2.5);
  CHECK(Value(7).as_number() == 7);
  CHECK(Value(7L).is_number());
  CHECK(Value(7LL).is_number());
  CHECK(Value(7UL).is_number());
  CHECK(Value("hi").as_string() == "hi");
  CHECK(Value(std::string_view("sv")).as_string() == "sv");
  CHECK(Value(std::string("s")).is_string());
  CHECK(Value::array().is_array());
  CHECK(Value::object().is_object());
  CHECK(Value::array().size() == 0);
  CHECK(Value(3).size() == 0);
}

TEST_CASE("a Value stays small enough for 100k-entry mirrors") {
  CHECK(sizeof(Value) <= 40);
}

TEST_CASE("object members keep insertion order and set replaces in place") {
  Value o = Value::object();
  o.set("b", 1);
  o.set("a", 2);
  o.set("c", 3);
  o.set("a", 20);                                   // replaced, keeps its position
  REQUIRE(o.size() == 3);
  CHECK(o.members()[0].first == "b");
  CHECK(o.members()[1].first == "a");
  CHECK(o.members()[1].second.as_number() == 20);
  CHECK(o.members()[2].first == "c");
  CHECK(o.erase("b"));
  CHECK_FALSE(o.erase("b"));
  CHECK(o.members()[0].first == "a");
  CHECK(o.find("b") == nullptr);
}

TEST_CASE("field helpers return nullptr unless the member has the asked kind") {
  Value o = Value::object();
  o.set("s", "text");
  o.set("o", Value::object());
  o.set("a", Value::array());
  CHECK(*o.get_string("s") == "text");
  CHECK(o.get_string("o") == nullptr);
  CHECK(o.get_object("o") != nullptr);
  CHECK(o.get_array("a") != nullptr);
  CHECK(o.get_array("missing") == nullptr);
  CHECK(Value(3).find("x") == nullptr);            // a scalar has no members
}

TEST_CASE("lookups in a large object agree with a map through sets and erases") {
  // Random operations against std::map: exercises the index's growth and its
  // backward-shift deletion, which renumbers the members after an erased one.
  std::mt19937 rng(12345);
  Value o = Value::object();
  std::map<std::string, int> model;
  for (int step = 0; step < 20000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 600);
    if (rng() % 3 == 0) {
      CHECK(o.erase(key) == (model.erase(key) == 1));
    } else {
      const int v = static_cast<int>(rng() % 1000);
      o.set(key, v);
      model[key] = v;
    }
    if (step % 997 == 0) {
      REQUIRE(o.size() == model.size());
      for (const auto& [k, v] : model) {
        const Value* found = o.find(k);
        REQUIRE(found != nullptr);
        CHECK(found->as_number() == v);
        CHECK(o.members()[o.position(k)].first == k);
      }
    }
  }
  CHECK(o.find("absent") == nullptr);
  CHECK(o.position("absent") == Value::npos);
}

TEST_CASE("a copy is deep and independent, a move empties the source") {
  Value o = Value::object();
  for (int i = 0; i < 40; ++i) o.set("key" + std::to_string(i), i);   // indexed
  Value arr = Value::array();
  arr.push_back(o);
  arr.push_back("x");
  Value copy = arr;
  copy.items()[0].set("key3", "changed");
  CHECK(arr.items()[0].find("key3")->as_number() == 3);
  CHECK(copy.items()[0].find("key3")->as_string() == "changed");
  CHECK(copy.items()[0].find("key39")->as_number() == 39);   // the copy's index works
  Value moved = std::move(copy);
  CHECK(moved.items().size() == 2);
  CHECK(copy.is_null());                            // NOLINT: the moved-from state is defined
}

TEST_CASE("assigning a child to its parent does not read freed memory") {
  Value v = Value::array();
  Value inner = Value::object();
  inner.set("deep", "yes");
  v.push_back(inner);
  v = v.items()[0];                                 // copy from inside *this
  CHECK(v.find("deep")->as_string() == "yes");
  Value w = Value::object();
  w.set("child", Value::array());
  w.find("child")->push_back(5);
  w = std::move(*w.find("child"));                  // move from inside *this
  REQUIRE(w.is_array());
  CHECK(w.items()[0].as_number() == 5);
  Value& self = w;
  w = self;
  CHECK(w.items().size() == 1);
}

TEST_CASE("equality ignores member order and compares numbers as doubles") {
  Value a = Value::object();
  a.set("x", 1);
  a.set("y", Value::array());
  Value b = Value::object();
  b.set("y", Value::array());
  b.set("x", 1.0);
  CHECK(a == b);
  b.set("x", 2);
  CHECK(a != b);
  Value big_a = Value::object();
  Value big_b = Value::object();
  for (int i = 0; i < 100; ++i) {
    big_a.set(std::to_string(i), i);
    big_b.set(std::to_string(99 - i), 99 - i);
  }
  CHECK(big_a == big_b);
  CHECK(Value(0.0) == Value(-0.0));
  CHECK(Value::array() != Value::object());
  CHECK(Value() != Value(false));
  CHECK(Value("1") != Value(1));
}
