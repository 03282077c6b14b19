#include "filters/clamav/clamd_protocol.h"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace mailgate;
using namespace std::string_literals;

BOOST_AUTO_TEST_SUITE(clamd_protocol)

BOOST_AUTO_TEST_CASE(chunks_carry_their_length_in_four_octets_network_order) {
  BOOST_TEST(instreamChunk("abc") == "\0\0\0\3abc"s);
  std::string big(0x010203, 'x');
  std::string chunk = instreamChunk(big);
  BOOST_TEST(chunk.size() == 4 + big.size());
  BOOST_TEST(chunk.substr(0, 4) == "\0\x01\x02\x03"s);
  BOOST_TEST(instreamEnd() == "\0\0\0\0"s);
  BOOST_TEST(instream_command == "zINSTREAM\0"s);
}

BOOST_AUTO_TEST_CASE(replies_clean_virus_error) {
  auto clean = parseClamdReply("stream: OK");
  BOOST_TEST((clean.kind == ClamdReply::Kind::Clean));
  auto virus = parseClamdReply("stream: Win.Test.EICAR_HDB-1 FOUND");
  BOOST_TEST((virus.kind == ClamdReply::Kind::Virus));
  BOOST_TEST(virus.text == "Win.Test.EICAR_HDB-1");
  auto error = parseClamdReply("INSTREAM size limit exceeded. ERROR");
  BOOST_TEST((error.kind == ClamdReply::Kind::Error));
  BOOST_TEST(error.text == "clamd: INSTREAM size limit exceeded.");
  auto stream_error = parseClamdReply("stream: Can't allocate memory ERROR");
  BOOST_TEST(stream_error.text == "clamd: Can't allocate memory");
}

BOOST_AUTO_TEST_CASE(replies_not_understood_are_errors) {
  for (std::string_view reply : {"", "OK", "stream: FOUND", "stream:  FOUND x", "PONG", "stream: OKAY"}) {
    BOOST_TEST_INFO(reply);
    BOOST_TEST((parseClamdReply(reply).kind == ClamdReply::Kind::Error));
  }
}

BOOST_AUTO_TEST_CASE(signature_names_are_made_safe) {
  // A hostile peer's name cannot break the reply line or the header comment.
  auto virus = parseClamdReply("stream: Evil\r\n250 ok (x)\\ FOUND");
  BOOST_TEST((virus.kind == ClamdReply::Kind::Virus));
  BOOST_TEST(virus.text == "Evil250 ok x");
  auto long_name = parseClamdReply("stream: " + std::string(500, 'A') + " FOUND");
  BOOST_TEST(long_name.text.size() == max_signature_octets);
  auto only_controls = parseClamdReply("stream: \x01\x02 FOUND");
  BOOST_TEST((only_controls.kind == ClamdReply::Kind::Virus));
  BOOST_TEST(only_controls.text == "unnamed");
}

BOOST_AUTO_TEST_CASE(reader_collects_pieces_up_to_the_nul) {
  ClamdReplyReader reader;
  BOOST_TEST(!reader.feed("stream: Eic").has_value());
  BOOST_TEST(!reader.feed("ar-Sig FOU").has_value());
  auto reply = reader.feed("ND\0trailing"s);
  BOOST_REQUIRE(reply.has_value());
  BOOST_TEST(reply->text == "Eicar-Sig");
  BOOST_TEST(reader.done());
  BOOST_TEST(!reader.feed("more\0"s).has_value());
}

BOOST_AUTO_TEST_CASE(reader_bounds_the_reply) {
  ClamdReplyReader reader;
  std::string piece(600, 'x');
  BOOST_TEST(!reader.feed(piece).has_value());
  auto reply = reader.feed(piece);
  BOOST_REQUIRE(reply.has_value());
  BOOST_TEST((reply->kind == ClamdReply::Kind::Error));
  BOOST_TEST(reply->text.find("longer than 1024") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(reader_takes_what_came_when_the_peer_closes) {
  ClamdReplyReader partial;
  partial.feed("stream: OK");
  BOOST_TEST((partial.closed().kind == ClamdReply::Kind::Clean));
  ClamdReplyReader nothing;
  auto reply = nothing.closed();
  BOOST_TEST((reply.kind == ClamdReply::Kind::Error));
  BOOST_TEST(reply.text == "clamd closed the connection without a reply");
}

BOOST_AUTO_TEST_SUITE_END()
