// permessage-deflate's parts (net/permessage_deflate.hpp): the offers the server takes, and
// the codecs against zlib itself, including every way an inflated message can be too much.
#include "net/permessage_deflate.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

using atrium::net::deflate_offer_acceptable;
using atrium::net::MessageDeflater;
using atrium::net::MessageInflater;

namespace {

// What a client's zlib makes of a message: RFC 7692's framing with its own level and
// strategy, optionally ending in a final block instead of the sync flush.
std::string client_compress(const std::string& in, int level, bool final_block) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, final_block ? Z_FINISH : Z_SYNC_FLUSH) == (final_block ? Z_STREAM_END : Z_OK));
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (!final_block) {
    REQUIRE(out.size() >= 4);
    out.resize(out.size() - 4);
  }
  return out;
}

std::string zlib_inflate(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, -15) == Z_OK);
  std::string data = in + std::string("\x00\x00\xff\xff", 4);
  std::string out(1 << 22, '\0');
  z.next_in = reinterpret_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_SYNC_FLUSH);
  REQUIRE((rc == Z_OK || rc == Z_STREAM_END));
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

// Text with the repetition real payloads have, or noise that does not compress.
std::string sample(std::mt19937& rng, std::size_t n, bool noise) {
  std::string s;
  s.reserve(n);
  while (s.size() < n) {
    if (noise) {
      s.push_back(static_cast<char>(rng() & 0xff));
    } else {
      s += "{\"id\":" + std::to_string(rng() % 1000) + ",\"x\":" + std::to_string(rng() % 97) + "},";
    }
  }
  s.resize(n);
  return s;
}

}  // namespace

TEST_CASE("permessage-deflate offers: the first one it can honour, by RFC 7692's rules") {
  CHECK(deflate_offer_acceptable("permessage-deflate", 0));
  CHECK(deflate_offer_acceptable("permessage-deflate; client_max_window_bits", 0));
  CHECK(deflate_offer_acceptable("permessage-deflate;client_max_window_bits=8", 0));
  CHECK(deflate_offer_acceptable("permessage-deflate; client_max_window_bits=\"12\"", 0));
  CHECK(deflate_offer_acceptable("permessage-deflate; server_max_window_bits=15; server_no_context_takeover", 0));
  CHECK(deflate_offer_acceptable(" permessage-deflate ;\tclient_no_context_takeover ", 0));
  CHECK(deflate_offer_acceptable("foo; a=\"x,y\", permessage-deflate", 0));

  CHECK_FALSE(deflate_offer_acceptable("", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate", 1));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; server_max_window_bits=14", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; server_max_window_bits", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_max_window_bits=7", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_max_window_bits=016", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_max_window_bits=1x", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_max_window_bits=", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_no_context_takeover=yes", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; client_no_context_takeover; client_no_context_takeover", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflate; mystery", 0));
  CHECK_FALSE(deflate_offer_acceptable("x-webkit-deflate-frame", 0));
  CHECK_FALSE(deflate_offer_acceptable("permessage-deflatex", 0));

  // Several offers: each judged on its own, by its place among the permessage-deflate ones.
  const std::string two = "permessage-deflate; server_max_window_bits=10, x-other, permessage-deflate";
  CHECK_FALSE(deflate_offer_acceptable(two, 0));
  CHECK(deflate_offer_acceptable(two, 1));
  CHECK_FALSE(deflate_offer_acceptable(two, 2));
}

TEST_CASE("MessageDeflater: what zlib reads back, each message on its own") {
  MessageDeflater deflater;
  std::mt19937 rng(7);
  std::string out;
  for (int i = 0; i < 300; ++i) {
    const std::size_t n = rng() % 3 == 0 ? rng() % 70000 : rng() % 600;
    const std::string in = sample(rng, n, rng() % 4 == 0);
    REQUIRE(deflater.compress(in, out));
    // No context is carried over: a fresh inflater reads every message alone.
    CHECK(zlib_inflate(out) == in);
  }
  const std::string repetitive(10000, 'a');
  REQUIRE(deflater.compress(repetitive, out));
  CHECK(out.size() < 100);
}

TEST_CASE("MessageInflater: whatever a client's zlib sends, up to the cap and no further") {
  MessageInflater inflater;
  std::mt19937 rng(11);
  std::string out;
  for (int i = 0; i < 400; ++i) {
    const std::size_t n = rng() % 5 == 0 ? rng() % 200000 : rng() % 2000;
    const std::string in = sample(rng, n, rng() % 4 == 0);
    const int level = static_cast<int>(rng() % 10);
    const bool final_block = rng() % 3 == 0;
    const std::string z = client_compress(in, level, final_block);
    INFO("message " << i << " of " << n << " bytes, level " << level << (final_block ? ", final block" : ""));
    REQUIRE(inflater.inflate(z, n, out) == MessageInflater::Result::ok);
    CHECK(out == in);
    if (n > 0) CHECK(inflater.inflate(z, n - 1, out) == MessageInflater::Result::too_large);
  }
}

TEST_CASE("MessageInflater: a small message cannot inflate into a large one") {
  MessageInflater inflater;
  const std::string bomb = client_compress(std::string(50u << 20, ' '), 9, false);  // 50 MB of spaces
  CHECK(bomb.size() < 100000);
  std::string out;
  CHECK(inflater.inflate(bomb, 65536, out) == MessageInflater::Result::too_large);
  CHECK(out.capacity() <= 4 * 65536);  // never grew far past the cap
  // Exactly at the cap is fine.
  const std::string at_cap = client_compress(std::string(65536, 'x'), 6, false);
  CHECK(inflater.inflate(at_cap, 65536, out) == MessageInflater::Result::ok);
  CHECK(out.size() == 65536);
}

TEST_CASE("MessageInflater: data that is not deflate is refused, and the next message is read") {
  MessageInflater inflater;
  std::string out;
  CHECK(inflater.inflate(std::string("\xff\xfe\xfd\xfc\x00\x11", 6), 1000, out) == MessageInflater::Result::corrupt);
  std::mt19937 rng(3);
  int refused = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string noise = sample(rng, rng() % 300, true);
    const MessageInflater::Result r = inflater.inflate(noise, 4096, out);
    refused += r == MessageInflater::Result::corrupt;
    CHECK(out.size() <= 4096);
  }
  CHECK(refused > 1000);  // most noise is not deflate; what is, inflates within the cap
  const std::string z = client_compress("{\"op\":\"ping\"}", 6, false);
  CHECK(inflater.inflate(z, 100, out) == MessageInflater::Result::ok);
  CHECK(out == "{\"op\":\"ping\"}");
  CHECK(inflater.inflate("", 100, out) == MessageInflater::Result::ok);  // an empty message
  CHECK(out.empty());
}
