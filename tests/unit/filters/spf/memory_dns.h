#pragma once
// An in-memory DnsLookup for the SPF tests and the fuzz target (no sockets): per name, records
// in the order given, with TIMEOUT and SERVFAIL entries, CNAMEs followed, every query counted.
// A TIMEOUT/SERVFAIL entry answers a question that no earlier entry of that name answered —
// the semantics of the openspf test suite's driver (pyspf test/testspf.py).

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "gateway/dns/dns_lookup.h"

namespace mailgate::test {

class MemoryDns final : public DnsLookup {
 public:
  // type: "A", "AAAA", "PTR", "CNAME", "TXT", "SPF"; value as in a zone file without final dots.
  void add(const std::string& name, const std::string& type, const std::string& value) {
    zone_[key(name)].push_back(Entry{type, {value}, 0});
  }
  void addTxt(const std::string& name, std::vector<std::string> strings, const std::string& type = "TXT") {
    zone_[key(name)].push_back(Entry{type, std::move(strings), 0});
  }
  void addMx(const std::string& name, uint16_t preference, const std::string& exchange) {
    zone_[key(name)].push_back(Entry{"MX", {exchange}, preference});
  }
  void addTimeout(const std::string& name) { zone_[key(name)].push_back(Entry{"TIMEOUT", {}, 0}); }
  void addServFail(const std::string& name) { zone_[key(name)].push_back(Entry{"SERVFAIL", {}, 0}); }
  // Makes the name exist without records (so that other types answer NoData, not NxDomain).
  void touch(const std::string& name) { zone_[key(name)]; }

  DnsRecordSet query(std::string_view name, uint16_t type) const override {
    ++queries_;
    {
      std::lock_guard lock(mutex_);
      log_.push_back(std::string(name) + " " + dnsTypeName(type));
    }
    std::set<std::string> seen;
    return resolve(key(name), type, seen);
  }

  unsigned queries() const { return queries_; }
  std::vector<std::string> log() const {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  struct Entry {
    std::string type;
    std::vector<std::string> values;
    uint16_t preference;
  };

  static std::string key(std::string_view name) {
    std::string lowered(name);
    if (!lowered.empty() && lowered.back() == '.') lowered.pop_back();
    for (char& c : lowered) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return lowered;
  }

  static std::string withoutDot(std::string name) {
    if (!name.empty() && name.back() == '.') name.pop_back();
    return name;
  }

  DnsRecordSet resolve(const std::string& name, uint16_t type, std::set<std::string>& seen) const {
    DnsRecordSet records;
    auto found = zone_.find(name);
    if (found == zone_.end()) {
      records.status = DnsStatus::NxDomain;
      return records;
    }
    const std::string wanted = dnsTypeName(type);
    bool answered = false;
    const Entry* cname = nullptr;
    for (const Entry& entry : found->second) {
      if (entry.type == "TIMEOUT" || entry.type == "SERVFAIL") {
        if (answered) break;
        records.status = entry.type == "TIMEOUT" ? DnsStatus::Timeout : DnsStatus::ServFail;
        return records;
      }
      if (entry.type == "CNAME") cname = &entry;
      if (entry.type != wanted) continue;
      answered = true;
      if (type == dns_type::A || type == dns_type::AAAA) {
        records.addresses.push_back(entry.values.front());
      } else if (type == dns_type::MX) {
        records.mx.emplace_back(entry.preference, withoutDot(entry.values.front()));
      } else if (type == dns_type::PTR) {
        records.names.push_back(withoutDot(entry.values.front()));
      } else {
        std::string joined;
        for (const std::string& part : entry.values) joined += part;
        records.txt.push_back(joined);
        records.txt_strings.push_back(entry.values);
      }
    }
    if (answered) {
      records.status = DnsStatus::Ok;
      return records;
    }
    if (cname != nullptr) {
      // A CNAME loop or a chain past 8 links: what a recursive resolver answers, SERVFAIL.
      if (!seen.insert(name).second || seen.size() > 8) {
        records.status = DnsStatus::ServFail;
        return records;
      }
      return resolve(key(cname->values.front()), type, seen);
    }
    records.status = DnsStatus::NoData;
    return records;
  }

  std::map<std::string, std::vector<Entry>> zone_;
  mutable std::atomic<unsigned> queries_{0};
  mutable std::mutex mutex_;
  mutable std::vector<std::string> log_;
};

}  // namespace mailgate::test
