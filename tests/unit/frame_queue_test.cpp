// util/frame_queue.hpp: a connection's outbox. The slot policy is what keeps fan-out free of
// allocations per delivery, so it is tested on the vector's own storage.
#include <doctest/doctest.h>

#include <string>

#include "util/frame_queue.hpp"

using atrium::FrameQueue;
using atrium::SharedFrame;

namespace {

// One pass of a connection: `lines` queued, then written in one go.
const SharedFrame* batch(FrameQueue& q, const SharedFrame& line, std::size_t lines) {
  for (std::size_t i = 0; i < lines; ++i) q.push(line);
  const SharedFrame* storage = &q[0];
  q.drop_front(q.size());
  return storage;
}

}  // namespace

TEST_CASE("frame queue: lines come out in order and bytes are counted") {
  FrameQueue q;
  const SharedFrame a("alpha"), b("be");
  q.push(a);
  q.push(b);
  q.push(a);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 12);
  CHECK(q[1].view() == "be");
  CHECK(a.use_count() == 3);  // queued by reference, not copied
  q.drop_front(2);
  CHECK(q.size() == 1);
  CHECK(q.bytes() == 5);
  CHECK(q[0].view() == "alpha");
  CHECK(a.use_count() == 2);  // a written line is released at once
  q.drop_front(1);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
}

TEST_CASE("frame queue: steady batches above the kept slots reuse the same storage") {
  // ~1M deliveries/s in bench/: about 30 lines a pass; 40 here, past the 32 kept slots.
  FrameQueue q;
  const SharedFrame line("{\"type\":\"event\"}");
  const SharedFrame* first = batch(q, line, 40);
  const std::size_t cap = q.capacity();
  CHECK(cap >= 40);
  for (int pass = 0; pass < 100; ++pass) {
    // Swinging between 12 and 40 lines (12 * 4 < 64): still no new storage.
    const std::size_t lines = pass % 2 ? 12 : 40;
    CHECK(batch(q, line, lines) == first);
    CHECK(q.capacity() == cap);  // kept through the drain, not freed and regrown
  }
}

TEST_CASE("frame queue: a burst's slots are given back after a run of small drains") {
  FrameQueue q;
  const SharedFrame line("x");
  batch(q, line, 5000);
  const std::size_t big = q.capacity();
  CHECK(big >= 5000);
  for (int i = 1; i < FrameQueue::kSmallDrains; ++i) batch(q, line, 3);
  CHECK(q.capacity() == big);  // one quiet pass is not enough
  batch(q, line, 3);
  CHECK(q.capacity() <= FrameQueue::kKeptSlots);
  // A large drain in the run starts the count again.
  batch(q, line, 5000);
  for (int i = 1; i < FrameQueue::kSmallDrains; ++i) batch(q, line, i == 4 ? 4000 : 3);
  CHECK(q.capacity() >= 4000);
}

TEST_CASE("frame queue: a queue that never drains does not grow at the front") {
  FrameQueue q;
  const SharedFrame line("y");
  for (int i = 0; i < 10; ++i) q.push(line);
  for (int i = 0; i < 100000; ++i) {
    q.push(line);
    q.drop_front(1);  // ten lines behind, never empty
  }
  CHECK(q.size() == 10);
  CHECK(q.capacity() < 1024);  // not the 100,010 slots of every line ever queued
  CHECK(line.use_count() == 11);
  q.release();
  CHECK(q.empty());
  CHECK(q.capacity() == 0);
  CHECK(line.use_count() == 1);
}

TEST_CASE("SharedFrame::alternate rides with the frame, set once, freed with it") {
  atrium::SharedFrame json("{\"op\":\"ping\"}");
  CHECK(!json.alternate());
  {
    const atrium::SharedFrame bin(std::string_view("\x81\xa2op\xa4ping", 10));
    json.set_alternate(bin);
    CHECK(bin.use_count() == 2);                 // the frame holds it
  }
  atrium::SharedFrame copy = json;                // every holder of the frame sees it
  const atrium::SharedFrame got = copy.alternate();
  REQUIRE(got);
  CHECK(got.size() == 10);
  json.set_alternate(atrium::SharedFrame("other"));   // set once: the first stays
  CHECK(json.alternate().view() == got.view());
  CHECK(got.use_count() == 2);
}

TEST_CASE("SharedFrame::compressed: one per encoding, kept with it, freed with it (ASan checks the frees)") {
  atrium::SharedFrame json("{\"op\":\"event\",\"data\":\"xxxxxxxxxxxxxxxx\"}");
  const atrium::SharedFrame twin("msgpack bytes");
  json.set_alternate(twin);
  json.set_compressed(atrium::SharedFrame("json, deflated"));
  twin.set_compressed(atrium::SharedFrame("msgpack, deflated"));
  CHECK(json.compressed().view() == "json, deflated");
  CHECK(json.alternate().compressed().view() == "msgpack, deflated");
  json.set_compressed(atrium::SharedFrame("again"));          // set once
  CHECK(json.compressed().view() == "json, deflated");
  json.set_compressed(json);                                   // never itself
  const atrium::SharedFrame zip = json.compressed();
  zip.set_compressed(atrium::SharedFrame("deeper"));           // a compressed form has none
  CHECK(!zip.compressed());
  CHECK(!json.incompressible());
  atrium::SharedFrame small("{}");
  small.set_incompressible();
  CHECK(small.incompressible());
  CHECK(!small.compressed());
  // The twin outlives the line that held it, with its own compressed form.
  const atrium::SharedFrame kept = json.alternate();
  json = atrium::SharedFrame();
  CHECK(kept.compressed().view() == "msgpack, deflated");
}
