#include "pusher/webhook_curl.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

namespace atrium::pusher::webhook {
namespace {

// The receiver's answer is not read: only its status counts.
std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }

CURL* easy(void* p) { return static_cast<CURL*>(p); }
CURLM* multi(void* p) { return static_cast<CURLM*>(p); }

// How long one wait for the socket lasts before the stop flag is looked at again.
constexpr int kPollMs = 50;

}  // namespace

void curl_global_once() {
  // curl_global_init is not thread-safe before 7.84: call_once makes the first caller do
  // it and any other wait. Never cleaned up: another part of the process may use curl.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

CurlPoster::CurlPoster(std::shared_ptr<const std::atomic<bool>> stopping, std::int64_t timeout_ms)
    : stopping_(std::move(stopping)), timeout_ms_(std::max<std::int64_t>(timeout_ms, 1)) {
  curl_global_once();
}

CurlPoster::~CurlPoster() {
  if (multi_) curl_multi_cleanup(multi(multi_));
  if (easy_) curl_easy_cleanup(easy(easy_));
}

bool CurlPoster::ready() {
  if (easy_ && multi_) return true;
  if (!easy_) easy_ = curl_easy_init();
  if (!multi_) multi_ = curl_multi_init();
  if (!easy_ || !multi_) return false;
  CURL* e = easy(easy_);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);   // a thread must not get SIGALRM for DNS timeouts
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms_));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<std::int64_t>(timeout_ms_, 5000)));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "atrium-webhooks/" ATRIUM_VERSION);
  // Only http and https, also after a redirect (which is not followed: a 3xx is a failure).
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  return true;
}

int CurlPoster::post(const std::string& url, const std::vector<WebhookOptions::Header>& headers,
                     const std::string& body) {
  if (!ready()) return 0;
  CURL* e = easy(easy_);
  CURLM* m = multi(multi_);
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) list = curl_slist_append(list, (name + ": " + value).c_str());
  // No "Expect: 100-continue" round trip for large bodies: receivers rarely answer it.
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));

  CURLcode result = CURLE_ABORTED_BY_CALLBACK;
  if (curl_multi_add_handle(m, e) == CURLM_OK) {
    int running = 1;
    while (!stopping_->load()) {
      if (curl_multi_perform(m, &running) != CURLM_OK || running == 0) break;
      if (curl_multi_wait(m, nullptr, 0, kPollMs, nullptr) != CURLM_OK) break;
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m, &left))
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) result = msg->data.result;
    curl_multi_remove_handle(m, e);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);
  long status = 0;
  if (result == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

}  // namespace atrium::pusher::webhook
