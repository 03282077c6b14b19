// TlsStream, sans-I/O: a server and a client stream hand each other their bytes in memory, as two
// sockets would; handshake, records both ways, resumption, a verification failure, and what a
// stream costs while idle.
#include <boost/test/unit_test.hpp>

#include <openssl/ec.h>
#include <openssl/pem.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "gateway/tls/server_tls.h"
#include "gateway/tls/tls_stream.h"

namespace mailgate {
namespace {

// A self-signed P-256 certificate for `name`, valid from `from_days` to `to_days` from now.
struct TestPair {
  X509Certificate certificate;
  PrivateKey key;
};

TestPair makePair(const std::string& name, long from_days = -1, long to_days = 2) {
  TestPair pair;
  pair.key.reset(EVP_EC_gen("P-256"));
  pair.certificate.reset(X509_new());
  X509* cert = pair.certificate.get();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert), to_days * 86400);
  X509_set_pubkey(cert, pair.key.get());
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  std::string san = "DNS:" + name;
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  X509_sign(cert, pair.key.get(), EVP_sha256());
  return pair;
}

struct Files {
  std::filesystem::path directory;
  Files() : directory(std::filesystem::temp_directory_path() / ("tls_stream_test." + std::to_string(::getpid()))) {
    std::filesystem::create_directories(directory);
  }
  ~Files() { std::filesystem::remove_all(directory); }
  std::string write(const std::string& name, const TestPair& pair, bool key) {
    std::string path = (directory / name).string();
    std::unique_ptr<std::FILE, CFree<&std::fclose>> file(std::fopen(path.c_str(), "wb"));
    if (key) PEM_write_PrivateKey(file.get(), pair.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    else PEM_write_X509(file.get(), pair.certificate.get());
    return path;
  }
};

TlsConfig configFor(Files& files, const TestPair& pair, const TestPair& key_of = {}) {
  TlsConfig config;
  config.certificate = files.write("cert.pem", pair, false);
  config.key = files.write("key.pem", key_of.key ? key_of : pair, true);
  return config;
}

// Moves bytes between the two until neither has anything to say.
void shuttle(TlsStream& client, TlsStream& server) {
  for (int round = 0; round < 20; ++round) {
    std::string to_server = client.takeCiphertext();
    std::string to_client = server.takeCiphertext();
    if (to_server.empty() && to_client.empty()) return;
    if (!to_server.empty()) BOOST_REQUIRE(server.receive(to_server).has_value());
    if (!to_client.empty()) BOOST_REQUIRE(client.receive(to_client).has_value());
  }
  BOOST_FAIL("the streams never went quiet");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_stream)

BOOST_AUTO_TEST_CASE(handshake_then_records_both_ways_then_resumption) {
  Files files;
  TestPair pair = makePair("mx.test");
  auto server_tls = ServerTls::load(configFor(files, pair));
  BOOST_REQUIRE_MESSAGE(server_tls.has_value(), server_tls.error());
  auto client_tls = ClientTls::make(files.write("ca.pem", pair, false));
  BOOST_REQUIRE(client_tls.has_value());

  auto server = TlsStream::server((*server_tls)->context());
  auto client = TlsStream::client((*client_tls)->context(), "mx.test", "mx.test", nullptr);
  BOOST_REQUIRE(server && client);
  BOOST_REQUIRE(client->send("EHLO a\r\n").has_value());  // waits for the handshake
  BOOST_REQUIRE(client->start().has_value());
  shuttle(*client, *server);
  BOOST_TEST(server->established());
  BOOST_TEST(server->takeEstablished());
  BOOST_TEST(!server->takeEstablished());  // once
  BOOST_TEST(server->takePlaintext() == "EHLO a\r\n");
  BOOST_REQUIRE(server->send("250 mx.test\r\n").has_value());
  shuttle(*client, *server);
  BOOST_TEST(client->takePlaintext() == "250 mx.test\r\n");
  TlsFacts facts = server->facts();
  BOOST_TEST(facts.version == "TLSv1.3");
  BOOST_TEST(facts.cipher.starts_with("TLS_"));
  BOOST_TEST(facts.sni == "mx.test");
  BOOST_TEST(!facts.resumed);

  (*client_tls)->remember("mx", client->session());
  auto again = TlsStream::client((*client_tls)->context(), "mx.test", "mx.test", (*client_tls)->session("mx"));
  auto server_again = TlsStream::server((*server_tls)->context());
  BOOST_REQUIRE(again && server_again);
  BOOST_REQUIRE(again->start().has_value());
  shuttle(*again, *server_again);
  BOOST_TEST(again->established());
  BOOST_TEST(again->facts().resumed);
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_name_fails_verification) {
  Files files;
  TestPair pair = makePair("other.test");
  auto server_tls = ServerTls::load(configFor(files, pair));
  auto client_tls = ClientTls::make(files.write("ca.pem", pair, false));
  BOOST_REQUIRE(server_tls && client_tls);
  auto server = TlsStream::server((*server_tls)->context());
  auto client = TlsStream::client((*client_tls)->context(), "mx.test", "mx.test", nullptr);
  BOOST_REQUIRE(client->start().has_value());
  BOOST_REQUIRE(server->receive(client->takeCiphertext()).has_value());
  auto result = client->receive(server->takeCiphertext());
  BOOST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().find("certificate verify failed") != std::string::npos, result.error());
  BOOST_TEST(!client->established());
}

BOOST_AUTO_TEST_CASE(garbage_instead_of_a_client_hello_fails_the_handshake) {
  Files files;
  auto server_tls = ServerTls::load(configFor(files, makePair("mx.test")));
  BOOST_REQUIRE(server_tls.has_value());
  auto server = TlsStream::server((*server_tls)->context());
  auto result = server->receive("RSET\r\nMAIL FROM:<a@b>\r\n");
  BOOST_REQUIRE(!result.has_value());
  BOOST_TEST(result.error().starts_with("handshake: "), result.error());
}

BOOST_AUTO_TEST_CASE(loading_names_the_file_that_is_wrong) {
  Files files;
  TestPair pair = makePair("mx.test");
  TestPair other = makePair("other.test");
  auto mismatched = ServerTls::load(configFor(files, pair, other));
  BOOST_REQUIRE(!mismatched.has_value());
  BOOST_TEST(mismatched.error().find("key.pem: the key does not match") != std::string::npos, mismatched.error());
  auto expired = ServerTls::load(configFor(files, makePair("old.test", -10, -1)));
  BOOST_REQUIRE(!expired.has_value());
  BOOST_TEST(expired.error().find("cert.pem: the certificate has expired") != std::string::npos, expired.error());
  TlsConfig missing = configFor(files, pair);
  missing.certificate = (files.directory / "absent.pem").string();
  auto absent = ServerTls::load(missing);
  BOOST_REQUIRE(!absent.has_value());
  BOOST_TEST(absent.error().find("absent.pem") != std::string::npos, absent.error());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
