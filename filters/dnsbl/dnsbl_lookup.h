#pragma once
// The DNS list questions of one session or transaction: one per (listed thing, zone), each asked
// through the shared resolver in its own job on the thread pool, so that every zone is asked at
// once and the slowest one sets the wait, not their sum. A zone that times out or fails counts as
// not listed (fail open: a list that is down must not stop mail) and says so in its answer.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "filters/dnsbl/dnsbl_zone.h"
#include "gateway/dns/dns_lookup.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {

// What is looked up: the client's address, its HELO name, the envelope sender's domain, or a
// registered domain of a link in the message.
enum class ListedThing { Client, Helo, Sender, Uri };
const char* listedThingName(ListedThing thing);  // "client", "helo", "sender", "uri"

struct ZoneAnswer {
  enum class Result { Listed, NotListed, Ignored, Failed };
  std::string zone;
  ListedThing thing = ListedThing::Client;
  std::string item;   // "192.0.2.1", "host.example", "example.com"
  std::string query;  // the name asked: "1.2.0.192.bl.example.net"
  int weight = 0;
  Result result = Result::Failed;
  std::vector<std::string> addresses;  // the A records as answered
  std::string text;                    // the TXT record's text, when listed and given
  std::string problem;                 // Failed: timeout, servfail, ...
  bool listed() const { return result == Result::Listed; }
};
const char* zoneResultName(ZoneAnswer::Result result);  // "listed", "not listed", "ignored", "failed"

struct ZoneQuestion {
  DnsblZone zone;
  ListedThing thing;
  std::string item;
  std::string prefix;  // the name under the zone: reversed address, or the domain
};

// The question for the client's address: reversed octets (RFC 5782 §2.1) or nibbles (§2.4).
std::string clientPrefix(std::string_view client_ip);

// Blocking (DNS): asks `question`'s A records and, when listed, its TXT text.
ZoneAnswer askZone(const DnsLookup& dns, const ZoneQuestion& question);

// One set of questions in flight. Made and read on the loop; the jobs write their answers under
// the mutex, first writer wins (a job, or the loop when the job's time is up).
class LookupBatch : public std::enable_shared_from_this<LookupBatch> {
 public:
  // Starts every question now (an empty set is settled at once).
  static std::shared_ptr<LookupBatch> start(JobRunner& runner, std::shared_ptr<const DnsLookup> dns,
                                            std::vector<ZoneQuestion> questions, Duration timeout);
  // A batch whose questions are known later (the message's links, once it is parsed).
  static std::shared_ptr<LookupBatch> pending() { return std::make_shared<LookupBatch>(); }
  void begin(JobRunner& runner, std::shared_ptr<const DnsLookup> dns, std::vector<ZoneQuestion> questions,
             Duration timeout);

  bool settled() const { return begun_ && outstanding_ == 0; }
  // Runs `then` (on the loop) once every answer is in; at once when that is already so.
  void whenSettled(std::move_only_function<void()> then);
  std::vector<ZoneAnswer> answers() const;

 private:
  // From a job (pool thread) or the loop; the first answer for `index` stays.
  void fill(std::size_t index, ZoneAnswer answer);
  void finishedOne(std::size_t index);  // on the loop

  mutable std::mutex mutex_;
  std::vector<ZoneAnswer> answers_;
  std::vector<bool> filled_;
  std::size_t outstanding_ = 0;
  bool begun_ = false;
  std::vector<std::move_only_function<void()>> waiters_;
};

// Runs `then` once every batch (nulls skipped) is settled.
void whenAllSettled(const std::vector<std::shared_ptr<LookupBatch>>& batches, std::move_only_function<void()> then);

}  // namespace mailgate
