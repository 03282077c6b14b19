// size_limit only names the limit: the session advertises and enforces it (one place; the
// transcripts in tests/transcripts/size_limit.smtp hold the replies), the pipeline takes the
// smallest of its stages' limits.
#include <boost/test/unit_test.hpp>

#include "filters/size_limit.h"
#include "gateway/pipeline/pipeline.h"

namespace mailgate {

BOOST_AUTO_TEST_SUITE(size_limit)

BOOST_AUTO_TEST_CASE(the_stage_names_the_limit_and_hooks_no_phase) {
  SizeLimitStage stage(1000);
  BOOST_TEST(*stage.maxMessageBytes() == 1000u);
  BOOST_TEST(stage.phases() == 0u);
}

BOOST_AUTO_TEST_CASE(the_pipeline_takes_the_smallest_limit) {
  std::vector<PipelineStage> stages;
  stages.push_back(PipelineStage{std::make_unique<SizeLimitStage>(5000), StageMode::Enforce, std::chrono::seconds(1)});
  stages.push_back(PipelineStage{std::make_unique<SizeLimitStage>(3000), StageMode::Enforce, std::chrono::seconds(1)});
  auto pipeline = Pipeline::make(std::move(stages));
  BOOST_TEST(*pipeline->maxMessageBytes() == 3000u);
  BOOST_TEST(!pipeline->hooks(Phase::MailFrom));
  BOOST_TEST(!pipeline->hooks(Phase::EndOfData));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
