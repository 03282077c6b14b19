#include "filters/dnsbl/dnsbl_lookup.h"

#include <cstdio>

#include "filters/header_text.h"
#include "gateway/util/ip_address.h"

namespace mailgate {
namespace {

// A list's TXT text goes into the 554 line after our own words; a reply line holds 512 octets
// (RFC 5321 §4.5.3.1.5), so the list's part is cut well inside it.
constexpr std::size_t max_list_text_octets = 200;

// Printed to the operator's log (standard error) for each list that did not answer: the record
// says it too, but a list that is down for every message should be seen without reading records.
void reportFailure(const ZoneAnswer& answer) {
  std::fprintf(stderr, "mailgate: dnsbl: %s for %s: %s (counted as not listed)\n", answer.zone.c_str(),
               answer.item.c_str(), answer.problem.c_str());
}

ZoneAnswer answerTemplate(const ZoneQuestion& question) {
  ZoneAnswer answer;
  answer.zone = question.zone.name();
  answer.thing = question.thing;
  answer.item = question.item;
  answer.query = question.prefix + "." + question.zone.name();
  answer.weight = question.zone.weight();
  return answer;
}

}  // namespace

const char* listedThingName(ListedThing thing) {
  switch (thing) {
    case ListedThing::Client: return "client";
    case ListedThing::Helo: return "helo";
    case ListedThing::Sender: return "sender";
    case ListedThing::Uri: return "uri";
  }
  return "?";
}

const char* zoneResultName(ZoneAnswer::Result result) {
  switch (result) {
    case ZoneAnswer::Result::Listed: return "listed";
    case ZoneAnswer::Result::NotListed: return "not listed";
    case ZoneAnswer::Result::Ignored: return "ignored";
    case ZoneAnswer::Result::Failed: return "failed";
  }
  return "?";
}

std::string clientPrefix(std::string_view client_ip) {
  auto address = IpAddress::parse(client_ip);
  return address ? address->reversed() : std::string();
}

ZoneAnswer askZone(const DnsLookup& dns, const ZoneQuestion& question) {
  ZoneAnswer answer = answerTemplate(question);
  DnsRecordSet records = dns.query(answer.query, dns_type::A);
  switch (records.status) {
    case DnsStatus::Ok: break;
    case DnsStatus::NoData:
    case DnsStatus::NxDomain: answer.result = ZoneAnswer::Result::NotListed; return answer;
    default:
      answer.result = ZoneAnswer::Result::Failed;
      answer.problem = std::string(dnsStatusName(records.status)) + (records.error.empty() ? "" : ": " + records.error);
      return answer;
  }
  answer.addresses = records.addresses;
  bool any_list_answer = false, counted = false;
  for (const auto& address : records.addresses) {
    any_list_answer = any_list_answer || isListAnswer(address);
    counted = counted || question.zone.counts(address);
  }
  // RFC 5782 §2.1: answers are in 127.0.0.0/8. Anything else (a list that expired and now
  // answers every name with a web server's address) says nothing about the client.
  answer.result = counted ? ZoneAnswer::Result::Listed
                          : any_list_answer ? ZoneAnswer::Result::NotListed : ZoneAnswer::Result::Ignored;
  if (!counted) return answer;
  DnsRecordSet text = dns.query(answer.query, dns_type::TXT);
  if (text.status == DnsStatus::Ok && !text.txt.empty()) answer.text = printable(text.txt.front(), max_list_text_octets, false);
  return answer;
}

std::shared_ptr<LookupBatch> LookupBatch::start(JobRunner& runner, std::shared_ptr<const DnsLookup> dns,
                                                std::vector<ZoneQuestion> questions, Duration timeout) {
  auto batch = pending();
  batch->begin(runner, std::move(dns), std::move(questions), timeout);
  return batch;
}

void LookupBatch::begin(JobRunner& runner, std::shared_ptr<const DnsLookup> dns, std::vector<ZoneQuestion> questions,
                        Duration timeout) {
  {
    std::lock_guard lock(mutex_);
    answers_.resize(questions.size());
    filled_.assign(questions.size(), false);
  }
  outstanding_ = questions.size();
  begun_ = true;
  if (questions.empty()) {
    auto waiters = std::move(waiters_);
    for (auto& waiter : waiters) waiter();
    return;
  }
  // The batch stays alive through each job: its shared_ptr travels with it.
  auto self = shared_from_this();
  for (std::size_t index = 0; index < questions.size(); ++index) {
    auto question = std::make_shared<ZoneQuestion>(std::move(questions[index]));
    runner.submit(
        [self, dns, question, index](std::stop_token) {
          self->fill(index, askZone(*dns, *question));
          return Verdict::proceed();
        },
        timeout,
        [self, question, index](std::optional<Verdict> finished) {
          if (!finished) {
            ZoneAnswer late = answerTemplate(*question);
            late.problem = "no answer in time";
            self->fill(index, std::move(late));
          }
          self->finishedOne(index);
        });
  }
}

void LookupBatch::fill(std::size_t index, ZoneAnswer answer) {
  std::lock_guard lock(mutex_);
  if (filled_[index]) return;
  answers_[index] = std::move(answer);
  filled_[index] = true;
}

void LookupBatch::finishedOne(std::size_t index) {
  ZoneAnswer answer;
  {
    std::lock_guard lock(mutex_);
    answer = answers_[index];
  }
  if (answer.result == ZoneAnswer::Result::Failed) reportFailure(answer);
  if (--outstanding_ > 0) return;
  auto waiters = std::move(waiters_);
  for (auto& waiter : waiters) waiter();
}

void LookupBatch::whenSettled(std::move_only_function<void()> then) {
  if (settled()) {
    then();
    return;
  }
  waiters_.push_back(std::move(then));
}

std::vector<ZoneAnswer> LookupBatch::answers() const {
  std::lock_guard lock(mutex_);
  return answers_;
}

void whenAllSettled(const std::vector<std::shared_ptr<LookupBatch>>& batches, std::move_only_function<void()> then) {
  auto remaining = std::make_shared<std::size_t>(0);
  auto shared_then = std::make_shared<std::move_only_function<void()>>(std::move(then));
  std::vector<std::shared_ptr<LookupBatch>> waiting;
  for (const auto& batch : batches)
    if (batch && !batch->settled()) waiting.push_back(batch);
  if (waiting.empty()) {
    (*shared_then)();
    return;
  }
  *remaining = waiting.size();
  for (const auto& batch : waiting)
    batch->whenSettled([remaining, shared_then] {
      if (--*remaining == 0) (*shared_then)();
    });
}

}  // namespace mailgate
