#include <boost/test/unit_test.hpp>

#include "filters/size_limit.h"

namespace mailgate {
namespace {

Verdict verdictOf(const Stage& stage, const StageInput& input) {
  auto step = stage.check(input);
  BOOST_REQUIRE(std::holds_alternative<Verdict>(step));
  return std::get<Verdict>(std::move(step));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(size_limit)

BOOST_AUTO_TEST_CASE(declared_size_over_the_limit_is_refused_at_mail) {
  SizeLimitStage stage(1000);
  StageInput input;
  input.phase = Phase::MailFrom;
  input.declared_size = 1001;
  Verdict verdict = verdictOf(stage, input);
  BOOST_TEST(static_cast<int>(verdict.kind) == static_cast<int>(Verdict::Kind::Reject));
  BOOST_TEST(verdict.reply.code() == 552);
  BOOST_TEST(verdict.reply.enhanced() == "5.3.4");
  input.declared_size = 1000;
  BOOST_TEST(static_cast<int>(verdictOf(stage, input).kind) == static_cast<int>(Verdict::Kind::Continue));
  input.declared_size.reset();
  BOOST_TEST(static_cast<int>(verdictOf(stage, input).kind) == static_cast<int>(Verdict::Kind::Continue));
}

BOOST_AUTO_TEST_CASE(actual_size_over_the_limit_is_refused_at_end_of_data) {
  SizeLimitStage stage(1000);
  StageInput input;
  input.phase = Phase::EndOfData;
  input.message_size = 1001;
  BOOST_TEST(verdictOf(stage, input).reply.code() == 552);
  input.message_size = 1000;
  BOOST_TEST(static_cast<int>(verdictOf(stage, input).kind) == static_cast<int>(Verdict::Kind::Continue));
  BOOST_TEST(*stage.maxMessageBytes() == 1000u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
