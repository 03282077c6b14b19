#include "filters/spf/spf_libspf2_record.h"

#include <sys/socket.h>

#include <algorithm>

namespace mailgate {
namespace {

constexpr size_t kMechHeaderBytes = 4;  // sizeof(SPF_mech_t)
constexpr size_t kCidrDataBytes = 4;    // sizeof(SPF_data_cidr_t)

const char* mechanismName(SpfMechanismKind kind) {
  switch (kind) {
    case SpfMechanismKind::All: return "all";
    case SpfMechanismKind::Include: return "include";
    case SpfMechanismKind::A: return "a";
    case SpfMechanismKind::Mx: return "mx";
    case SpfMechanismKind::Ptr: return "ptr";
    case SpfMechanismKind::Ip4: return "ip4";
    case SpfMechanismKind::Ip6: return "ip6";
    case SpfMechanismKind::Exists: return "exists";
  }
  return "all";
}

MacroString withZeroCidrMarker(std::optional<MacroString> domain) {
  MacroString macro = domain ? std::move(*domain) : MacroString{};
  if (macro.empty()) {  // "a/0": the current domain
    MacroToken current{MacroToken::Kind::Expand, {}, {}};
    current.expand.letter = 'd';
    macro.push_back(current);
  }
  macro.push_back(MacroToken{MacroToken::Kind::Literal, std::string(kZeroCidrMarker), {}});
  return macro;
}

class Writer {
 public:
  explicit Writer(int family) : family_(family) {}

  bool add(const SpfMechanism& mechanism) {
    std::string prefix(1, static_cast<char>(mechanism.qualifier));
    prefix += mechanismName(mechanism.kind);
    switch (mechanism.kind) {
      case SpfMechanismKind::All: return emit(prefix, 0);
      case SpfMechanismKind::Ip4:
      case SpfMechanismKind::Ip6: return addNetwork(mechanism, prefix);
      case SpfMechanismKind::A:
      case SpfMechanismKind::Mx: return addAddressMechanism(mechanism, prefix);
      default: return addDomain(prefix, mechanism.domain, "", false);
    }
  }

  bool addRedirect(const MacroString& domain) { return addDomain("redirect=", domain, "", false, '\0'); }

  Libspf2Record finish() {
    Libspf2Record result;
    if (error_.empty()) {
      result.text = std::move(text_);
      result.compiled_bytes = compiled_;
    } else {
      result.error = std::move(error_);
    }
    return result;
  }

 private:
  bool addNetwork(const SpfMechanism& mechanism, const std::string& prefix) {
    bool ip4 = mechanism.kind == SpfMechanismKind::Ip4;
    size_t data = ip4 ? 4 : 16;  // struct in_addr / in6_addr
    std::optional<unsigned> cidr = ip4 ? mechanism.ip4_cidr : mechanism.ip6_cidr;
    if (cidr && *cidr == 0) {
      // "/0" matches every address of the family: said to libspf2 as its two halves.
      return emit(prefix + (ip4 ? ":0.0.0.0/1" : ":::/1"), data) &&
             emit(prefix + (ip4 ? ":128.0.0.0/1" : ":8000::/1"), data);
    }
    return emit(prefix + ":" + mechanism.address + (cidr ? "/" + std::to_string(*cidr) : ""), data);
  }

  bool addAddressMechanism(const SpfMechanism& mechanism, const std::string& prefix) {
    // Only the length for the client's family matters (§5.3); libspf2 reads the same one.
    std::optional<unsigned> cidr = family_ == AF_INET ? mechanism.ip4_cidr : mechanism.ip6_cidr;
    if (cidr && *cidr == 0) return addDomain(prefix, withZeroCidrMarker(mechanism.domain), "", false);
    std::string suffix = cidr ? std::string(family_ == AF_INET ? "/" : "//") + std::to_string(*cidr) : "";
    // libspf2 keeps CIDR data only for lengths it stores as non-zero: a full length is "absent".
    bool cidr_data = cidr && *cidr != (family_ == AF_INET ? 32u : 128u);
    return addDomain(prefix, mechanism.domain, suffix, cidr_data);
  }

  bool addDomain(const std::string& prefix, const std::optional<MacroString>& domain, const std::string& cidr,
                 bool has_cidr, char separator = ':') {
    if (!domain) return emit(prefix + cidr, has_cidr ? kCidrDataBytes : 0);
    std::optional<std::string> text = macroForLibspf2(*domain);
    if (!text) return fail("a macro delimiter \",\" or \"/\" in " + prefix + " (libspf2 cannot express it)");
    size_t data = libspf2CompiledSize(*domain) + (has_cidr ? kCidrDataBytes : 0);
    if (data > kMaxCompiledTermBytes) {
      return fail("term " + prefix + " compiles to " + std::to_string(data) + " bytes, over the " +
                  std::to_string(kMaxCompiledTermBytes) + " allowed (CVE-2023-42118 guard)");
    }
    return emit(prefix + (separator ? std::string(1, separator) : "") + *text + cidr, data);
  }

  bool emit(const std::string& term, size_t data) {
    // SPF_c_mech_add refuses a mechanism once the record's compiled mechanisms would pass 511.
    if (compiled_ + kMechHeaderBytes > kLibspf2MaxMechBytes) {
      return fail("the record has more mechanisms than libspf2 can hold (" + std::to_string(kLibspf2MaxMechBytes) +
                  " compiled bytes)");
    }
    compiled_ += kMechHeaderBytes + data;
    text_ += " " + term;
    return true;
  }

  bool fail(std::string error) {
    if (error_.empty()) error_ = std::move(error);
    return false;
  }

  int family_;
  std::string text_ = "v=spf1";
  std::string error_;
  size_t compiled_ = 0;
};

}  // namespace

Libspf2Record recordForLibspf2(const SpfRecord& record, int family, std::optional<size_t> mechanisms) {
  Writer writer(family);
  size_t count = mechanisms ? std::min(*mechanisms, record.mechanisms.size()) : record.mechanisms.size();
  for (size_t i = 0; i < count; ++i) {
    if (!writer.add(record.mechanisms[i])) return writer.finish();
  }
  // §6.1: redirect is used only when nothing matched, and ignored when "all" is present. libspf2
  // treats it as a mechanism where it stands, so it goes last (issue 3: "redirect-after-…").
  if (!mechanisms && record.redirect && !record.has_all) writer.addRedirect(*record.redirect);
  return writer.finish();
}

}  // namespace mailgate
