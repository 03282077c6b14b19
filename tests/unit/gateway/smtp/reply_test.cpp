#include <boost/test/unit_test.hpp>

#include "gateway/smtp/reply.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(reply)

BOOST_AUTO_TEST_CASE(wire_format_single_and_multi_line) {
  BOOST_TEST(Reply::of(250, "2.1.0", "Ok").wire() == "250 2.1.0 Ok\r\n");
  BOOST_TEST(Reply::of(220, "", "mx ESMTP").wire() == "220 mx ESMTP\r\n");
  BOOST_TEST(Reply::of(250, "", "mx\nPIPELINING\nSIZE 10").wire() == "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
  BOOST_TEST(Reply::of(550, "5.7.1", "a\nb").wire() == "550-5.7.1 a\r\n550 5.7.1 b\r\n");
}

BOOST_AUTO_TEST_CASE(class_of_code_and_enhanced_code_must_agree) {
  BOOST_TEST(!Reply::make(550, "4.7.1", "x").has_value());
  BOOST_TEST(!Reply::make(451, "5.7.1", "x").has_value());
  BOOST_TEST(!Reply::make(250, "2.0", "x").has_value());
  BOOST_TEST(!Reply::make(250, "2.0.1000", "x").has_value());
  BOOST_TEST(!Reply::make(600, "", "x").has_value());
  BOOST_TEST(!Reply::make(199, "", "x").has_value());
  BOOST_TEST(Reply::make(452, "4.5.3", "Too many recipients").has_value());
}

BOOST_AUTO_TEST_CASE(text_is_checked) {
  BOOST_TEST(!Reply::make(550, "5.7.1", "bad\rtext").has_value());
  BOOST_TEST(!Reply::make(550, "5.7.1", std::string(600, 'x')).has_value());
  BOOST_TEST(Reply::make(550, "5.7.1", std::string(500, 'x')).has_value());
}

BOOST_AUTO_TEST_CASE(received_replies_keep_their_enhanced_code_once) {
  Reply reply = Reply::received(550, {"5.1.1 <bob@example.org>: Recipient address rejected"});
  BOOST_TEST(reply.enhanced() == "5.1.1");
  BOOST_TEST(reply.wire() == "550 5.1.1 <bob@example.org>: Recipient address rejected\r\n");
  Reply plain = Reply::received(250, {"Ok"});
  BOOST_TEST(plain.wire() == "250 Ok\r\n");
  BOOST_TEST(plain.summary() == "250 Ok");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
