// libopendkim turns each signer's key record into an OpenSSL key with d2i_PUBKEY_bio(), once per
// signature it checks. Under OpenSSL 3.0 (Debian bookworm) that call builds a decoder chain every
// time (OSSL_DECODER_CTX_new_for_pkey walks every provider's decoders under locks): measured here
// at about 190 µs of a 210 µs RSA verification, by far the largest cost of DKIM per message, and
// libopendkim has no hook to keep a decoded key. So mailgate defines d2i_PUBKEY_bio itself: the
// dynamic linker binds libopendkim's calls to this definition in the executable (an executable's
// symbols come first in lookup), which answers a key it has decoded before with another reference
// to the same EVP_PKEY (reference-counted; verification only reads it) and decodes new keys with
// OpenSSL's d2i_PUBKEY. Keys are cached by their exact DER bytes, so a changed DNS record is a new
// key, and the cache is bounded. Any other caller of d2i_PUBKEY_bio gets the same behaviour with a
// key it must not modify; nothing in mailgate or the libraries it links modifies a public key.

#include "filters/dkim/public_key_cache.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gateway/util/c_free.h"

namespace mailgate {
namespace {

// Distinct keys a busy gateway meets within a while; past it the cache starts over.
constexpr std::size_t max_cached_keys = 4096;
// A DER public key longer than this (an RSA key of about 64k bits) is decoded but not kept.
constexpr std::size_t max_cached_key_bytes = 8192;
// A key record's p= value, decoded, longer than this is refused (no real key comes near it).
constexpr std::size_t max_key_record_bytes = 1024 * 1024;

using PublicKey = std::unique_ptr<EVP_PKEY, CFree<&EVP_PKEY_free>>;

struct PublicKeyCache {
  std::mutex mutex;
  std::unordered_map<std::string, PublicKey> keys;
  std::atomic<std::size_t> hits{0};
};

PublicKeyCache& cache() {
  static auto* instance = new PublicKeyCache;  // never destroyed: verifications may outlive main()
  return *instance;
}

// The BIO's remaining bytes (libopendkim hands a memory BIO over the decoded p= value).
bool readAll(BIO* bio, std::string& der) {
  char buffer[4096];
  for (;;) {
    int count = BIO_read(bio, buffer, sizeof buffer);
    if (count <= 0) return BIO_eof(bio) == 1 || count == 0;
    der.append(buffer, static_cast<std::size_t>(count));
    if (der.size() > max_key_record_bytes) return false;
  }
}

}  // namespace

std::size_t cachedPublicKeys() {
  std::lock_guard lock(cache().mutex);
  return cache().keys.size();
}

std::size_t publicKeyCacheHits() { return cache().hits.load(); }

}  // namespace mailgate

extern "C" EVP_PKEY* d2i_PUBKEY_bio(BIO* bio, EVP_PKEY** out) {
  using namespace mailgate;
  std::string der;
  if (bio == nullptr || !readAll(bio, der)) return nullptr;
  const auto* bytes = reinterpret_cast<const unsigned char*>(der.data());
  // The rare caller that hands in a key to fill gets OpenSSL's own behaviour.
  if (out != nullptr) return d2i_PUBKEY(out, &bytes, static_cast<long>(der.size()));
  PublicKeyCache& keys = cache();
  {
    std::lock_guard lock(keys.mutex);
    auto found = keys.keys.find(der);
    if (found != keys.keys.end() && EVP_PKEY_up_ref(found->second.get()) == 1) {
      keys.hits.fetch_add(1, std::memory_order_relaxed);
      return found->second.get();
    }
  }
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &bytes, static_cast<long>(der.size()));
  if (key == nullptr || der.size() > max_cached_key_bytes || EVP_PKEY_up_ref(key) != 1) return key;
  std::lock_guard lock(keys.mutex);
  if (keys.keys.size() >= max_cached_keys) keys.keys.clear();
  auto [slot, inserted] = keys.keys.try_emplace(std::move(der), key);
  if (!inserted) EVP_PKEY_free(key);  // another thread kept the same key first: drop our extra reference
  return key;
}
