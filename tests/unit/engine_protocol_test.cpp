// Request parsing and room ids (docs/protocol.md "Ids", "Client to server").
#include <doctest/doctest.h>

#include "engine/protocol.hpp"
#include "json/codec.hpp"

using namespace atrium;
using namespace atrium::engine;

namespace {

Result<Request> parse(const char* text, json::Value& ref, bool& has_ref) {
  return parse_request(text, ref, has_ref);
}

ErrorCode code_of(const char* text) {
  json::Value ref;
  bool has_ref = false;
  auto r = parse(text, ref, has_ref);
  REQUIRE(!r.ok());
  return r.error().code;
}

}  // namespace

TEST_CASE("room ids of 1..128 allowed bytes are valid, typed or not") {
  CHECK(validate_room_id("chat:lobby").ok());
  CHECK(validate_room_id("lobby").ok());
  CHECK(validate_room_id("a:b:c").ok());
  CHECK(validate_room_id("A-z_0.9@x:y").ok());
  CHECK(validate_room_id(std::string(128, 'a')).ok());
}

TEST_CASE("room ids that are empty, too long, oddly spelled or with an empty part are bad_request") {
  for (std::string id : {std::string(""), std::string(129, 'a'), std::string("chat lobby"),
                         std::string("chat/x"), std::string(":x"), std::string("x:"),
                         std::string(":"), std::string("caf\xc3\xa9")}) {
    auto s = validate_room_id(id);
    CHECK_MESSAGE(!s.ok(), id);
    if (!s.ok()) CHECK(s.error().code == ErrorCode::bad_request);
  }
}

TEST_CASE("a room id splits into TYPE at the first colon") {
  CHECK(room_type_of("chat:lobby") == "chat");
  CHECK(room_type_of("a:b:c") == "a");
  CHECK(room_type_of("lobby") == "");
}

TEST_CASE("a request that is not an object, has no op or an unknown op is refused") {
  CHECK(code_of("[1,2]") == ErrorCode::bad_request);
  CHECK(code_of("{\"room\":\"x\"}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":5}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":\"dance\"}") == ErrorCode::unknown_op);
}

TEST_CASE("ill-typed fields are bad_request, and a valid ref is kept for the failed reply") {
  json::Value ref;
  bool has_ref = false;
  auto r = parse("{\"op\":\"join\",\"ref\":7,\"room\":42}", ref, has_ref);
  REQUIRE(!r.ok());
  CHECK(r.error().code == ErrorCode::bad_request);
  CHECK(has_ref);
  CHECK(ref.as_number() == 7);
  CHECK(code_of("{\"op\":\"join\",\"room\":\"x\",\"payload\":[1]}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":\"call\",\"room\":\"x\"}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":\"call\",\"room\":\"x\",\"method\":\"m\",\"args\":{}}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":\"emit\",\"room\":\"x\",\"event\":\"\"}") == ErrorCode::bad_request);
  CHECK(code_of("{\"op\":\"ping\",\"ref\":{}}") == ErrorCode::bad_request);
}

TEST_CASE("a well-formed call keeps its method and arguments") {
  json::Value ref;
  bool has_ref = false;
  auto r = parse("{\"op\":\"call\",\"ref\":\"r1\",\"room\":\"counter:a\",\"method\":\"add\",\"args\":[2,\"x\"]}",
                 ref, has_ref);
  REQUIRE(r.ok());
  CHECK(r->op == Op::call);
  CHECK(r->room == "counter:a");
  CHECK(r->name == "add");
  CHECK(r->body.size() == 2);
  CHECK(r->ref.as_string() == "r1");
}

TEST_CASE("a request that is not JSON is bad_json, with no ref to answer") {
  json::Value ref;
  bool has_ref = false;
  auto r = parse("{\"op\":\"ping\",\"ref\":3", ref, has_ref);
  REQUIRE(!r.ok());
  CHECK(r.error().code == ErrorCode::bad_json);
  CHECK_FALSE(has_ref);
  CHECK(code_of("{\"op\":\"ping\",\"ref\":1e400}") == ErrorCode::bad_json);
}

TEST_CASE("a field given twice takes its last value, and unknown fields are ignored") {
  json::Value ref;
  bool has_ref = false;
  auto r = parse(R"({"op":"join","ref":1,"room":"a:1","extra":{"x":[1]},"op":"emit",)"
                 R"("event":"e","room":"b:2","data":{"k":"v"},"ref":"last"})",
                 ref, has_ref);
  REQUIRE(r.ok());
  CHECK(r->op == Op::emit);
  CHECK(r->room == "b:2");
  CHECK(r->name == "e");
  CHECK(json::to_json(r->body) == R"({"k":"v"})");
  CHECK(r->ref.as_string() == "last");
  // A later null counts as absent, as it always did.
  CHECK(code_of(R"({"op":"emit","room":"a:1","event":"e","room":null})") == ErrorCode::bad_request);
  auto no_data = parse(R"({"op":"emit","room":"a:1","event":"e"})", ref, has_ref);
  REQUIRE(no_data.ok());
  CHECK(no_data->body.is_null());
}

TEST_CASE("server frames are single JSON objects with the fields of docs/protocol.md") {
  auto patch = json::parse(encode_patch("a:b", 3, "{\"op\":\"add\",\"path\":\"/x\",\"value\":1}"));
  REQUIRE(patch.ok());
  CHECK(*patch->get_string("op") == "patch");
  CHECK(patch->find("seq")->as_number() == 3);
  CHECK(patch->get_array("ops")->size() == 1);
  auto err = json::parse(encode_reply_error(json::Value(5), make_error(ErrorCode::room_full, "full \"!\"")));
  REQUIRE(err.ok());
  CHECK(err->find("ok")->as_bool() == false);
  CHECK(*err->get_object("error")->get_string("code") == "room_full");
  CHECK(*err->get_object("error")->get_string("message") == "full \"!\"");
  auto left = json::parse(encode_left("a:b", "kicked", ""));
  REQUIRE(left.ok());
  CHECK(left->find("message") == nullptr);
}

TEST_CASE("an event frame holds exactly the event line, whatever size the one before it had") {
  const json::Value small("hi");
  const json::Value huge(std::string(200 * 1024, 'x'));  // past the buffer's kept size
  json::Value nested = json::Value::object();
  nested.set("n", json::Value(1.5));
  for (const json::Value* data : {&small, &huge, &small, static_cast<const json::Value*>(&nested), &small}) {
    const SharedFrame frame = encode_event_frame("chat:1", "say", *data, "c7");
    CHECK(frame.view() == encode_event("chat:1", "say", *data, "c7"));
    CHECK(frame.data()[frame.size()] == '\0');
  }
  CHECK(encode_event_frame("r", "e", small, {}).view() == R"({"op":"event","room":"r","event":"e","data":"hi"})");
}
