#include "filters/spf/spf_budget.h"

#include "filters/spf/spf_names.h"

namespace mailgate {

LookupRole SpfBudget::classify(uint16_t type, std::string_view name, bool should_cache) {
  if (type == dns_type::MX) {
    expected_.clear();
    return LookupRole::Term;
  }
  if (type == dns_type::PTR) {
    expected_.clear();
    return should_cache ? LookupRole::Term : LookupRole::PtrMacro;
  }
  if (type != dns_type::A && type != dns_type::AAAA) return LookupRole::Other;
  if (!expected_.empty() && expected_cache_ == should_cache && equalsIgnoreCase(expected_.front(), name)) {
    expected_.pop_front();
    return expected_role_;
  }
  expected_.clear();
  return LookupRole::Term;
}

void SpfBudget::expectAddresses(std::vector<std::string> names, LookupRole role, bool should_cache) {
  expected_.assign(std::make_move_iterator(names.begin()), std::make_move_iterator(names.end()));
  expected_role_ = role;
  expected_cache_ = should_cache;
}

bool SpfBudget::countTerm(std::string& error) {
  expected_.clear();
  if (++terms_ <= limits_.dns_terms) return true;
  error = "too many DNS-querying terms (" + std::to_string(terms_) + " > " + std::to_string(limits_.dns_terms) +
          ", RFC 7208 §4.6.4)";
  return false;
}

bool SpfBudget::countVoid(std::string& error) {
  if (++voids_ <= limits_.void_lookups) return true;
  error = "too many void lookups (" + std::to_string(voids_) + " > " + std::to_string(limits_.void_lookups) +
          ", RFC 7208 §4.6.4)";
  return false;
}

bool SpfBudget::countQuery(std::string& error) {
  if (queries_ >= limits_.total_queries) {
    error = "too many DNS queries (more than " + std::to_string(limits_.total_queries) + " for one check)";
    return false;
  }
  ++queries_;
  return true;
}

}  // namespace mailgate
