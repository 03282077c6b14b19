// TransactionDriver with no socket and no loop: every phase, every verdict kind from every phase,
// the end of a session at every point, and the decision record each leaves. The stages are the
// real Pipeline's; only the stages themselves and the delivery target are the test's own.
#include <boost/test/unit_test.hpp>

#include <deque>
#include <map>

#include "gateway/smtp/replies.h"
#include "gateway/transaction/transaction_driver.h"

namespace mailgate {
namespace {

// Answers a fixed verdict at each phase it is given one for.
class ScriptedStage final : public Stage {
 public:
  ScriptedStage(std::string name, std::map<Phase, Verdict> verdicts) : name_(std::move(name)), verdicts_(std::move(verdicts)) {
    for (const auto& [phase, verdict] : verdicts_) phases_ |= phaseBit(phase);
  }
  std::string_view name() const override { return name_; }
  PhaseMask phases() const override { return phases_; }
  Step check(const StageInput& input) const override {
    inputs.push_back(input);
    const Verdict& verdict = verdicts_.at(input.phase);
    if (!deferred) return verdict;
    // A verdict that comes later, from work this test controls (a network stage's reply).
    return Deferred{[this, verdict](Deferred::Resume resume) mutable {
      held.push_back([resume = std::move(resume), verdict]() mutable { resume(verdict); });
    }};
  }

  bool deferred = false;
  mutable std::deque<std::move_only_function<void()>> held;
  mutable std::vector<StageInput> inputs;

 private:
  std::string name_;
  PhaseMask phases_ = 0;
  std::map<Phase, Verdict> verdicts_;
};

// Takes every recipient; keeps what it was given; answers the message with `message_reply`.
class RecordingTarget final : public DeliveryTarget {
 public:
  void recipient(const Runtime&, const Envelope&, const Path& recipient, RecipientDone done) override {
    recipients.push_back(recipient.address());
    if (refuse_recipients) done(Reply::of(550, "5.1.1", "User unknown"));
    else done(std::nullopt);
  }
  void message(const Runtime&, std::shared_ptr<const OutgoingMessage> message, MessageDone done) override {
    messages.push_back(message);
    done({message_reply});
  }
  void reset() override { ++resets; }
  void release() override { ++releases; }

  bool refuse_recipients = false;
  Reply message_reply = Reply::of(250, "2.0.0", "Ok: queued as X1");
  std::vector<std::string> recipients;
  std::vector<std::shared_ptr<const OutgoingMessage>> messages;
  int resets = 0;
  int releases = 0;
};

class TestHost final : public DriverHost {
 public:
  explicit TestHost(std::vector<std::unique_ptr<Stage>> stages) {
    Config config = embeddedDefaultConfig();
    config.server.hostname = "mx.test";
    config.server.domains = {"example.org"};
    config.spool.path = "/tmp";
    std::vector<PipelineStage> entries;
    for (auto& stage : stages) entries.push_back(PipelineStage{std::move(stage), StageMode::Enforce, std::chrono::seconds(5)});
    auto runtime = std::make_shared<Runtime>();
    runtime->config = std::make_shared<const Config>(std::move(config));
    runtime->pipeline = Pipeline::make(std::move(entries));
    runtime_ = runtime;
  }
  std::shared_ptr<const Runtime> currentRuntime() override { return runtime_; }
  JobRunner& jobs() override { return runner_; }
  NetworkAccess* network() override { return nullptr; }
  DeliveryTarget& deliveryTarget() override { return target; }
  void record(const nlohmann::json& record) override { records.push_back(record); }

  const Stage& stage(std::size_t index) const { return *runtime_->pipeline->stages()[index].stage; }

  RecordingTarget target;
  std::vector<nlohmann::json> records;

 private:
  std::shared_ptr<const Runtime> runtime_;
  InlineJobRunner runner_;
};

// What the session would be told: "accept" (its own reply) or the reply's summary; "none" when no
// answer came.
struct Heard {
  std::optional<std::string> said;
  TransactionDriver::Answer callback() {
    said.reset();
    return [this](std::optional<Reply> reply) { said = reply ? reply->summary() : "accept"; };
  }
  std::string value() const { return said.value_or("none"); }
};

SessionFacts facts() {
  SessionFacts facts;
  facts.session = "S1";
  facts.client_ip = "192.0.2.1";
  facts.client_port = 40000;
  return facts;
}

MailCommand mailFrom(const std::string& address) {
  auto parsed = parseMailCommand("FROM:<" + address + ">");
  BOOST_REQUIRE(parsed);
  return *parsed;
}

RcptCommand rcptTo(const std::string& address) {
  auto parsed = parseRcptCommand("TO:<" + address + ">");
  BOOST_REQUIRE(parsed);
  return *parsed;
}

const std::string message_text = "From: a@sender.example\r\nSubject: hi\r\n\r\nHello.\r\n";

// A client's steps through one transaction (connect to the end of data), each answered to `heard`.
std::vector<std::function<void()>> transactionSteps(TransactionDriver& driver, Heard& heard) {
  return {[&] { driver.connect(heard.callback()); },
          [&] { driver.helo("client.example", true, heard.callback()); },
          [&] { driver.mail(mailFrom("a@sender.example"), heard.callback()); },
          [&] { driver.rcpt(rcptTo("user@example.org"), heard.callback()); },
          [&] {
            driver.messageBytes(message_text);
            driver.endOfData(message_text.size(), heard.callback());
          }};
}

// Runs a whole transaction as a client would, stopping at the first refusal (the session lets
// nothing through after one), and returns what each step heard.
std::vector<std::string> runTransaction(TransactionDriver& driver) {
  Heard heard;
  std::vector<std::string> said;
  std::vector<std::function<void()>> steps = transactionSteps(driver, heard);
  for (auto& step : steps) {
    step();
    said.push_back(heard.value());
    if (said.back() != "accept") break;
  }
  said.resize(steps.size(), "not sent");
  return said;
}

std::unique_ptr<Stage> stageAt(std::string name, Phase phase, Verdict verdict) {
  return std::make_unique<ScriptedStage>(std::move(name), std::map<Phase, Verdict>{{phase, std::move(verdict)}});
}

const Phase all_phases[] = {Phase::Connect, Phase::Helo, Phase::MailFrom, Phase::Rcpt, Phase::EndOfData};

}  // namespace

BOOST_AUTO_TEST_SUITE(transaction_driver)

BOOST_AUTO_TEST_CASE(an_accepted_transaction_is_delivered_and_leaves_one_record) {
  std::vector<std::unique_ptr<Stage>> stages;
  stages.push_back(std::make_unique<ScriptedStage>(
      "every", std::map<Phase, Verdict>{{Phase::Connect, Verdict::proceed("c")}, {Phase::Helo, Verdict::proceed("h")},
                                        {Phase::MailFrom, Verdict::proceed("m")}, {Phase::Rcpt, Verdict::proceed("r")},
                                        {Phase::EndOfData, Verdict::proceed("d")}}));
  TestHost host(std::move(stages));
  {
    TransactionDriver driver(host, facts());
    auto said = runTransaction(driver);
    std::vector<std::string> expected{"accept", "accept", "accept", "accept", "250 2.0.0 Ok: queued as X1"};
    BOOST_TEST(said == expected, boost::test_tools::per_element());
    driver.end("quit");
  }
  BOOST_REQUIRE_EQUAL(host.records.size(), 1u);
  const auto& record = host.records[0];
  BOOST_TEST(record["type"] == "transaction");
  BOOST_TEST(record["action"] == "accept");
  BOOST_TEST(record["sender"] == "a@sender.example");
  BOOST_TEST(record["helo"] == "client.example");
  BOOST_TEST(record["client"]["ip"] == "192.0.2.1");
  BOOST_TEST(record["reply"] == "250 2.0.0 Ok: queued as X1");
  BOOST_TEST(record["recipients"][0]["reply"] == "250 2.1.5 Ok");
  std::vector<std::string> phases;
  for (const auto& stage : record["stages"]) phases.push_back(stage["phase"]);
  std::vector<std::string> expected_phases{"connect", "helo", "mail", "rcpt", "data"};
  BOOST_TEST(phases == expected_phases, boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(host.target.messages.size(), 1u);
  BOOST_TEST(host.target.recipients == std::vector<std::string>{"user@example.org"}, boost::test_tools::per_element());
  BOOST_TEST(host.target.releases >= 1);

  // Every stage saw the same session facts, and the transaction's phases its envelope.
  const auto& inputs = static_cast<const ScriptedStage&>(host.stage(0)).inputs;
  BOOST_REQUIRE_EQUAL(inputs.size(), 5u);
  for (const auto& input : inputs) {
    BOOST_TEST(input.client_ip == "192.0.2.1");
    BOOST_TEST(input.client_port == 40000);
    BOOST_TEST(input.session_scratch != nullptr);
  }
  BOOST_TEST(inputs[1].helo == "client.example");
  BOOST_TEST(inputs[3].recipient->address() == "user@example.org");
  BOOST_TEST(inputs[4].message_size == message_text.size());
  BOOST_TEST(inputs[2].scratch == inputs[4].scratch);
}

BOOST_AUTO_TEST_CASE(a_reject_at_each_phase_gets_its_reply_and_one_record) {
  for (Phase phase : all_phases) {
    BOOST_TEST_CONTEXT("phase " << phaseName(phase)) {
      std::vector<std::unique_ptr<Stage>> stages;
      stages.push_back(stageAt("refuser", phase, Verdict::reject(Reply::of(550, "5.7.1", "No thanks"), "scripted")));
      TestHost host(std::move(stages));
      std::vector<std::string> said;
      {
        TransactionDriver driver(host, facts());
        said = runTransaction(driver);
        driver.end("quit");
      }
      std::size_t index = static_cast<std::size_t>(phase);
      // A refused greeting is a 554 (RFC 5321 §3.1); every other phase gives the stage's reply.
      BOOST_TEST(said[index] == (phase == Phase::Connect ? "554 5.7.1 No thanks" : "550 5.7.1 No thanks"));
      for (std::size_t before = 0; before < index; ++before) BOOST_TEST(said[before] == "accept");
      BOOST_TEST(host.target.messages.empty());
      const auto& last = host.records.back();
      if (phase == Phase::Connect) {
        BOOST_TEST(last["type"] == "session");
        BOOST_TEST(last["action"] == "reject");
        BOOST_TEST(last["reply"] == "554 5.7.1 No thanks");
      } else if (phase == Phase::Helo) {
        BOOST_TEST(host.records.front()["type"] == "command");
        BOOST_TEST(last["type"] == "session");
      } else {
        BOOST_TEST(last["type"] == "transaction");
        BOOST_TEST(last["action"] == "reject");
        BOOST_TEST(last["stages"].back()["stage"] == "refuser");
        BOOST_TEST(last["stages"].back()["verdict"] == "reject");
      }
      std::size_t transactions = 0;
      for (const auto& record : host.records) transactions += record["type"] == "transaction";
      BOOST_TEST(transactions == (phase >= Phase::MailFrom ? 1u : 0u));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_tempfail_at_each_phase_gets_a_4xx) {
  for (Phase phase : all_phases) {
    BOOST_TEST_CONTEXT("phase " << phaseName(phase)) {
      std::vector<std::unique_ptr<Stage>> stages;
      stages.push_back(stageAt("later", phase, Verdict::tempFail(Reply::of(451, "4.7.1", "Later"), "scripted")));
      TestHost host(std::move(stages));
      TransactionDriver driver(host, facts());
      auto said = runTransaction(driver);
      driver.end("quit");
      std::size_t index = static_cast<std::size_t>(phase);
      // A greeting can only be deferred by closing: 421 with the stage's own words.
      BOOST_TEST(said[index] == (phase == Phase::Connect ? "421 4.7.1 Later" : "451 4.7.1 Later"));
      const auto& last = host.records.back();
      BOOST_TEST(last["action"] == "tempfail");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_tag_at_each_phase_marks_the_transaction_and_its_headers_go_out) {
  for (Phase phase : all_phases) {
    BOOST_TEST_CONTEXT("phase " << phaseName(phase)) {
      std::vector<std::unique_ptr<Stage>> stages;
      stages.push_back(stageAt("tagger", phase, Verdict::tag({{"X-Tagged", std::string(phaseName(phase))}}, 2.5, "scripted")));
      TestHost host(std::move(stages));
      TransactionDriver driver(host, facts());
      auto said = runTransaction(driver);
      driver.end("quit");
      BOOST_TEST(said.back() == "250 2.0.0 Ok: queued as X1");
      BOOST_REQUIRE_EQUAL(host.target.messages.size(), 1u);
      BOOST_TEST(host.target.messages[0]->addedHeaders().find("X-Tagged: " + std::string(phaseName(phase)) + "\r\n") !=
                 std::string::npos);
      BOOST_REQUIRE_EQUAL(host.records.size(), 1u);
      BOOST_TEST(host.records[0]["action"] == "tag");
      BOOST_TEST(host.records[0]["score"] == 2.5);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_continue_with_only_trace_headers_is_not_a_tag) {
  std::vector<std::unique_ptr<Stage>> stages;
  Verdict verdict = Verdict::proceed("pass");
  verdict.headers.push_back({"Received-SPF", "pass"});
  verdict.auth_results.push_back("spf=pass smtp.mailfrom=sender.example");
  stages.push_back(stageAt("spf", Phase::Rcpt, verdict));
  TestHost host(std::move(stages));
  TransactionDriver driver(host, facts());
  runTransaction(driver);
  driver.end("quit");
  BOOST_TEST(host.records[0]["action"] == "accept");
  const std::string& added = host.target.messages[0]->addedHeaders();
  BOOST_TEST(added.find("Received-SPF: pass\r\n") != std::string::npos);
  BOOST_TEST(added.find("Authentication-Results: mx.test;") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_reply_of_the_wrong_class_becomes_a_local_tempfail) {
  // A Reject with a 4xx, a TempFail with a 5xx, a Reject with a 2xx: none reaches the client.
  std::vector<Verdict> wrong{Verdict::reject(Reply::of(451, "4.7.1", "x"), "r"),
                             Verdict::tempFail(Reply::of(550, "5.7.1", "x"), "t"),
                             Verdict::reject(Reply::of(250, "2.0.0", "x"), "o")};
  for (auto& verdict : wrong) {
    std::vector<std::unique_ptr<Stage>> stages;
    stages.push_back(stageAt("confused", Phase::MailFrom, verdict));
    TestHost host(std::move(stages));
    TransactionDriver driver(host, facts());
    auto said = runTransaction(driver);
    BOOST_TEST(said[2] == replies::stageMisbehaved().summary());
    const auto& stage = host.records.back()["stages"].back();
    BOOST_TEST(stage["verdict"] == "tempfail");
    BOOST_TEST(stage["reason"].get<std::string>().find("wrong class") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_refusal_decided_at_connect_is_answered_at_rcpt_with_the_envelope_logged) {
  std::vector<std::unique_ptr<Stage>> stages;
  Verdict verdict = Verdict::reject(Reply::of(554, "5.7.1", "Service unavailable; client [192.0.2.1] blocked"), "listed");
  verdict.answer_at = Phase::Rcpt;
  stages.push_back(stageAt("blocklist", Phase::Connect, verdict));
  TestHost host(std::move(stages));
  TransactionDriver driver(host, facts());
  Heard heard;
  driver.connect(heard.callback());
  BOOST_TEST(heard.value() == "accept");
  driver.helo("client.example", true, heard.callback());
  BOOST_TEST(heard.value() == "accept");
  driver.mail(mailFrom("a@sender.example"), heard.callback());
  BOOST_TEST(heard.value() == "accept");
  driver.rcpt(rcptTo("user@example.org"), heard.callback());
  BOOST_TEST(heard.value() == "554 5.7.1 Service unavailable; client [192.0.2.1] blocked");
  driver.rcpt(rcptTo("other@example.org"), heard.callback());
  BOOST_TEST(heard.value() == "554 5.7.1 Service unavailable; client [192.0.2.1] blocked");
  driver.end("quit");
  BOOST_TEST(host.target.recipients.empty(), "nothing reached the downstream");
  BOOST_REQUIRE_EQUAL(host.records.size(), 1u);
  const auto& record = host.records[0];
  BOOST_TEST(record["type"] == "transaction");
  BOOST_TEST(record["action"] == "reject");
  BOOST_TEST(record["sender"] == "a@sender.example");
  BOOST_TEST(record["recipients"].size() == 2u);
  BOOST_TEST(record["stages"][0]["stage"] == "blocklist");
  BOOST_TEST(record["stages"][0]["phase"] == "connect");
  BOOST_TEST(record["stages"][0]["answer_at"] == "rcpt");
}

BOOST_AUTO_TEST_CASE(connect_and_helo_tags_carry_into_every_transaction) {
  std::vector<std::unique_ptr<Stage>> stages;
  stages.push_back(stageAt("reputation", Phase::Connect, Verdict::tag({{"X-Reputation", "poor"}}, 1.5, "scripted")));
  TestHost host(std::move(stages));
  TransactionDriver driver(host, facts());
  runTransaction(driver);
  Heard heard;
  driver.mail(mailFrom("b@sender.example"), heard.callback());
  driver.rcpt(rcptTo("user@example.org"), heard.callback());
  driver.messageBytes(message_text);
  driver.endOfData(message_text.size(), heard.callback());
  driver.end("quit");
  BOOST_REQUIRE_EQUAL(host.records.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    BOOST_TEST(host.records[i]["action"] == "tag");
    BOOST_TEST(host.records[i]["stages"][0]["stage"] == "reputation");
    BOOST_TEST(host.target.messages[i]->addedHeaders().find("X-Reputation: poor") != std::string::npos);
  }
  BOOST_TEST(host.records[0]["transaction"] != host.records[1]["transaction"]);
}

BOOST_AUTO_TEST_CASE(ehlo_then_quit_leaves_one_session_record) {
  TestHost host({});
  TransactionDriver driver(host, facts());
  Heard heard;
  driver.connect(heard.callback());
  driver.helo("client.example", true, heard.callback());
  driver.end("quit");
  driver.end("closed");  // a second end changes nothing
  BOOST_REQUIRE_EQUAL(host.records.size(), 1u);
  const auto& record = host.records[0];
  BOOST_TEST(record["type"] == "session");
  BOOST_TEST(record["helo"] == "client.example");
  BOOST_TEST(record["reason"] == "quit");
  BOOST_TEST(record["action"] == "none");
  BOOST_TEST(record["client"]["ip"] == "192.0.2.1");
}

// A client that pipelines QUIT behind the final dot: answering the end of data runs the QUIT, and
// so the session's end, before the answer's caller goes on. The transaction's record comes first
// and is the only one (no "session" record for a session that had a transaction).
BOOST_AUTO_TEST_CASE(quit_pipelined_behind_the_final_dot_leaves_only_the_transaction_record) {
  TestHost host({});
  TransactionDriver driver(host, facts());
  Heard heard;
  auto steps = transactionSteps(driver, heard);
  for (std::size_t step = 0; step + 1 < steps.size(); ++step) steps[step]();
  driver.messageBytes(message_text);
  std::string answered;
  driver.endOfData(message_text.size(), [&](std::optional<Reply> reply) {
    answered = reply ? reply->summary() : "accept";
    driver.end("quit");
  });
  BOOST_TEST(answered == "250 2.0.0 Ok: queued as X1");
  BOOST_REQUIRE_EQUAL(host.records.size(), 1u);
  BOOST_TEST(host.records[0]["type"] == "transaction");
  BOOST_TEST(host.records[0]["action"] == "accept");
}

BOOST_AUTO_TEST_CASE(ending_at_every_point_leaves_exactly_one_record_and_no_delivery) {
  // The session ends after 0..4 steps; the step pending at the end (when its stage is slow)
  // never answers afterwards.
  for (std::size_t steps = 0; steps <= 5; ++steps) {
    for (bool slow : {false, true}) {
      BOOST_TEST_CONTEXT("after " << steps << " steps" << (slow ? ", the next one pending" : "")) {
        std::vector<std::unique_ptr<Stage>> stages;
        auto stage = std::make_unique<ScriptedStage>(
            "slow", std::map<Phase, Verdict>{{Phase::Connect, Verdict::proceed()}, {Phase::Helo, Verdict::proceed()},
                                             {Phase::MailFrom, Verdict::proceed()}, {Phase::Rcpt, Verdict::proceed()},
                                             {Phase::EndOfData, Verdict::proceed()}});
        stage->deferred = true;
        ScriptedStage* scripted = stage.get();
        stages.push_back(std::move(stage));
        TestHost host(std::move(stages));
        Heard heard;
        {
          TransactionDriver driver(host, facts());
          std::vector<std::function<void()>> script = transactionSteps(driver, heard);
          for (std::size_t i = 0; i < steps; ++i) {
            script[i]();
            while (!scripted->held.empty()) {
              auto resume = std::move(scripted->held.front());
              scripted->held.pop_front();
              resume();
            }
          }
          if (slow && steps < script.size()) script[steps]();  // its stage holds the answer
          heard.said.reset();
          driver.end("client disconnected");
          // The pending stage answers after the end: nobody hears it.
          while (!scripted->held.empty()) {
            auto resume = std::move(scripted->held.front());
            scripted->held.pop_front();
            resume();
          }
          BOOST_TEST(!heard.said.has_value());
        }
        BOOST_TEST(host.records.size() == 1u);
        std::string type = host.records.back()["type"];
        // A transaction (MAIL answered or pending) leaves its record; a session without one, its own.
        bool transaction_started = steps >= 3 || (slow && steps == 2);
        BOOST_TEST(type == (transaction_started ? "transaction" : "session"));
        bool delivered = steps == 5;
        BOOST_TEST(host.target.messages.size() == (delivered ? 1u : 0u));
        if (transaction_started && !delivered) {
          BOOST_TEST(host.records.back()["action"] == "abandoned");
          BOOST_TEST(host.records.back()["reason"] == "client disconnected");
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_downstream_that_refuses_recipients_refuses_the_transaction) {
  TestHost host({});
  host.target.refuse_recipients = true;
  TransactionDriver driver(host, facts());
  auto said = runTransaction(driver);
  BOOST_TEST(said[3] == "550 5.1.1 User unknown");
  driver.end("quit");
  BOOST_TEST(host.records.back()["action"] == "reject");
  BOOST_TEST(host.records.back()["recipients"][0]["reply"] == "550 5.1.1 User unknown");
}

BOOST_AUTO_TEST_CASE(recipients_outside_server_domains_never_reach_the_target) {
  TestHost host({});
  TransactionDriver driver(host, facts());
  Heard heard;
  driver.connect(heard.callback());
  driver.helo("client.example", true, heard.callback());
  driver.mail(mailFrom("a@sender.example"), heard.callback());
  driver.rcpt(rcptTo("victim@elsewhere.example"), heard.callback());
  BOOST_TEST(heard.value() == "554 5.7.1 <victim@elsewhere.example>: Relay access denied");
  BOOST_TEST(host.target.recipients.empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace mailgate
