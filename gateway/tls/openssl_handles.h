#pragma once
// OpenSSL's handles, each wrapped once (design.md §5 habit 1): move-only, freed exactly once.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "gateway/util/c_free.h"

namespace mailgate {

using SslContext = std::unique_ptr<SSL_CTX, CFree<&SSL_CTX_free>>;
using SslConnection = std::unique_ptr<SSL, CFree<&SSL_free>>;
using SslSession = std::unique_ptr<SSL_SESSION, CFree<&SSL_SESSION_free>>;
using X509Certificate = std::unique_ptr<X509, CFree<&X509_free>>;
using PrivateKey = std::unique_ptr<EVP_PKEY, CFree<&EVP_PKEY_free>>;
using Bio = std::unique_ptr<BIO, CFree<&BIO_free_all>>;

// The reason OpenSSL gave for the last failure on this thread ("error:0A000086:SSL
// routines::certificate verify failed"), or `fallback` when its queue is empty; the queue is
// emptied, so a later failure does not report this one.
std::string takeOpensslError(std::string fallback = "unknown error");

}  // namespace mailgate
