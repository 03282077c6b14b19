#include <boost/test/unit_test.hpp>

#include "gateway/smtp/queue_id.h"

namespace mailgate {
namespace {

// As the relay keeps a downstream's reply: the code apart, the enhanced code kept apart.
std::string idOf(int code, std::string line) { return queueIdOf(Reply::received(code, {std::move(line)})); }

}  // namespace

BOOST_AUTO_TEST_SUITE(queue_id)

BOOST_AUTO_TEST_CASE(postfix_and_smtp_sink) {
  BOOST_TEST(idOf(250, "2.0.0 Ok: queued as 4XyZ1n2bcdz7") == "4XyZ1n2bcdz7");
  BOOST_TEST(idOf(250, "2.0.0 Ok: queued as 9B3A52C1F4") == "9B3A52C1F4");
  BOOST_TEST(idOf(250, "Ok: Queued As ABC123.") == "ABC123");  // a sentence's full stop is not the id's
}

BOOST_AUTO_TEST_CASE(exim) {
  BOOST_TEST(idOf(250, "OK id=1rAbCd-000123-4X") == "1rAbCd-000123-4X");
  BOOST_TEST(idOf(250, "OK msgid=1rAbCd-000123-4X") == "");  // only "id=" as a word of its own
}

BOOST_AUTO_TEST_CASE(sendmail_opensmtpd_and_dovecot_lmtp) {
  BOOST_TEST(idOf(250, "2.0.0 x8J1abc123 Message accepted for delivery") == "x8J1abc123");
  BOOST_TEST(idOf(250, "2.0.0 1a2b3c4d Message accepted for delivery") == "1a2b3c4d");
  BOOST_TEST(idOf(250, "2.0.0 <user@example.org> kRq9Ax0vY2XJBwAA0lC2tQ Saved") == "kRq9Ax0vY2XJBwAA0lC2tQ");
}

BOOST_AUTO_TEST_CASE(none_where_the_reply_gives_none) {
  BOOST_TEST(idOf(250, "2.6.0 <x@y> [InternalId=1] Queued mail for delivery") == "");
  BOOST_TEST(idOf(250, "2.0.0 Ok") == "");
  BOOST_TEST(idOf(250, "Ok: queued as ") == "");
  BOOST_TEST(idOf(250, "Ok: queued as " + std::string(max_queue_id_octets + 1, 'A')) == "");
  // Only a positive reply queued anything.
  BOOST_TEST(idOf(451, "4.3.0 queued as NOTHING") == "");
}

BOOST_AUTO_TEST_CASE(any_line_of_a_multiline_reply) {
  BOOST_TEST(queueIdOf(Reply::received(250, {"2.0.0 Thanks", "2.0.0 Ok: queued as 7F00AB"})) == "7F00AB");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
