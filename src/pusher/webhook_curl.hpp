// The default poster: libcurl, on the sender thread. One easy handle, reused (its
// connection stays open for the next batch to the same receiver), driven through a multi
// handle so that a POST in flight notices `stopping` within ~50 ms: shutting down never
// waits out the timeout of a receiver that does not answer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pusher/webhooks.hpp"

namespace atrium::pusher::webhook {

class CurlPoster {
 public:
  CurlPoster(std::shared_ptr<const std::atomic<bool>> stopping, std::int64_t timeout_ms);
  ~CurlPoster();
  CurlPoster(const CurlPoster&) = delete;
  CurlPoster& operator=(const CurlPoster&) = delete;

  // The HTTP status, or 0 when no answer came (or stopping was set meanwhile). One thread
  // at a time.
  int post(const std::string& url, const std::vector<WebhookOptions::Header>& headers,
           const std::string& body);

 private:
  bool ready();   // the handles, made on first use

  std::shared_ptr<const std::atomic<bool>> stopping_;
  std::int64_t timeout_ms_;
  void* easy_ = nullptr;    // CURL*, CURLM*: curl.h stays out of this header
  void* multi_ = nullptr;
};

// curl_global_init, once per process, whichever thread comes first.
void curl_global_once();

}  // namespace atrium::pusher::webhook
