#pragma once
// Decoded DKIM public keys, kept so that libopendkim does not decode the same key for every
// message (see public_key_cache.cpp for how and why).

#include <cstddef>

namespace mailgate {

// Keys currently kept, and how many decodes were answered from them since the start (for tests).
std::size_t cachedPublicKeys();
std::size_t publicKeyCacheHits();

}  // namespace mailgate
