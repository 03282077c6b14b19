#include "filters/dkim/dkim_library.h"

#include <cstring>

namespace mailgate {
namespace {

// A query libopendkim started: our lookups are synchronous (the whole verification already runs on
// the thread pool), so the answer is ready when the query starts and waitreply only hands it over.
struct DkimQuery {
  int status = DKIM_DNS_ERROR;
  std::size_t bytes = 0;
};

int startQuery(void* service, int type, unsigned char* query, unsigned char* buffer, size_t buffer_size,
               void** handle) {
  const auto& library = *static_cast<const DkimLibrary*>(service);
  auto pending = std::make_unique<DkimQuery>();
  std::string name(reinterpret_cast<const char*>(query));
  DnsRecordSet answer = library.dns().query(name, static_cast<uint16_t>(type));
  // Only answers that say something about the key go to libopendkim: it reads any packet without
  // answers as "no key" (permerror), so SERVFAIL and timeouts must reach it as errors (temperror).
  bool usable = answer.status == DnsStatus::Ok || answer.status == DnsStatus::NoData ||
                answer.status == DnsStatus::NxDomain;
  if (usable) {
    std::string packet = dnsAnswerPacket(name, static_cast<uint16_t>(type), answer);
    if (!packet.empty() && packet.size() <= buffer_size) {
      std::memcpy(buffer, packet.data(), packet.size());
      pending->bytes = packet.size();
      pending->status = DKIM_DNS_SUCCESS;
    }
  } else if (answer.status == DnsStatus::Timeout) {
    pending->status = DKIM_DNS_EXPIRED;
  }
  *handle = pending.release();
  return 0;
}

int waitReply(void*, void* handle, struct timeval*, size_t* bytes, int* error, int* dnssec) {
  const auto& pending = *static_cast<const DkimQuery*>(handle);
  if (bytes != nullptr) *bytes = pending.bytes;
  if (error != nullptr) *error = 0;
  if (dnssec != nullptr) *dnssec = DKIM_DNSSEC_UNKNOWN;
  return pending.status;
}

int cancelQuery(void*, void* handle) {
  delete static_cast<DkimQuery*>(handle);  // NOLINT: owned since startQuery released it
  return 0;
}

DKIM_CBSTAT ignoreSignaturesOverTheLimit(DKIM* dkim, DKIM_SIGINFO** signatures, int count) {
  const auto* library = static_cast<const DkimLibrary*>(dkim_get_user_context(dkim));
  int limit = library != nullptr ? library->options().max_signatures : count;
  for (int i = limit; i < count; ++i) dkim_sig_ignore(signatures[i]);
  return DKIM_CBSTAT_CONTINUE;
}

void appendShort(std::string& out, uint16_t value) {
  out += static_cast<char>(value >> 8);
  out += static_cast<char>(value & 0xff);
}

}  // namespace

std::expected<std::shared_ptr<DkimLibrary>, std::string> DkimLibrary::make(std::shared_ptr<const DnsLookup> dns,
                                                                           DkimLibraryOptions options) {
  DkimLibHandle lib(dkim_init(nullptr, nullptr));
  if (!lib) return std::unexpected("libopendkim could not start (dkim_init failed)");
  // BADSIGHANDLES: keep every signature's handle, failed ones too, so each gets its own result.
  // The option sizes are those of libopendkim's own fields (uint32_t flags, u_int key bits).
  uint32_t flags = DKIM_LIBFLAGS_BADSIGHANDLES;
  u_int min_bits = options.min_key_bits;
  if (dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK ||
      dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits, sizeof min_bits) != DKIM_STAT_OK)
    return std::unexpected("libopendkim refused its options");
  if (dkim_set_prescreen(lib.get(), &ignoreSignaturesOverTheLimit) != DKIM_STAT_OK)
    return std::unexpected("libopendkim refused the prescreen callback");
  auto library = std::make_shared<DkimLibrary>(std::move(dns), options, std::move(lib));
  DKIM_LIB* handle = library->get();
  dkim_dns_set_query_service(handle, library.get());
  dkim_dns_set_query_start(handle, &startQuery);
  dkim_dns_set_query_waitreply(handle, &waitReply);
  dkim_dns_set_query_cancel(handle, &cancelQuery);
  dkim_dns_set_init(handle, nullptr);
  dkim_dns_set_close(handle, nullptr);
  return library;
}

std::string dnsAnswerPacket(std::string_view name, uint16_t type, const DnsRecordSet& set) {
  if (!set.packet.empty()) return set.packet;
  std::string packet;
  uint16_t rcode = set.status == DnsStatus::NxDomain ? 3 : 0;
  std::size_t answers = set.status == DnsStatus::Ok ? set.txt.size() : 0;
  appendShort(packet, 0);              // id
  appendShort(packet, 0x8180 | rcode);  // QR, RD, RA
  appendShort(packet, 1);              // QDCOUNT
  appendShort(packet, static_cast<uint16_t>(answers));
  appendShort(packet, 0);
  appendShort(packet, 0);
  std::string_view rest = name;
  while (!rest.empty()) {
    std::size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63) return {};
    packet += static_cast<char>(label.size());
    packet += label;
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  }
  packet += '\0';
  appendShort(packet, type);
  appendShort(packet, 1);  // IN
  for (std::size_t i = 0; i < answers; ++i) {
    std::string rdata;
    std::string_view text = set.txt[i];
    do {  // character-strings of at most 255 octets (RFC 1035 §3.3.14)
      std::string_view piece = text.substr(0, 255);
      rdata += static_cast<char>(piece.size());
      rdata += piece;
      text.remove_prefix(piece.size());
    } while (!text.empty());
    appendShort(packet, 0xc00c);  // the question's name
    appendShort(packet, type);
    appendShort(packet, 1);
    appendShort(packet, 0);
    appendShort(packet, 300);
    appendShort(packet, static_cast<uint16_t>(rdata.size()));
    packet += rdata;
  }
  return packet;
}

}  // namespace mailgate
