#include "gateway/logtool/log_record.h"

#include <simdjson.h>

namespace mailgate::logtool {
namespace {

static_assert(RecordReader::padding_octets >= simdjson::SIMDJSON_PADDING);

using simdjson::dom::element;

std::string_view text(element value) {
  std::string_view result;
  return value.get(result) == simdjson::SUCCESS ? result : std::string_view();
}

uint64_t count(element value) {
  uint64_t result = 0;
  return value.get(result) == simdjson::SUCCESS ? result : 0;
}

void readClient(element value, LogRecord& record) {
  simdjson::dom::object client;
  if (value.get(client) != simdjson::SUCCESS) return;
  for (auto field : client)
    if (field.key == "ip") record.client_ip = text(field.value);
}

void readRecipients(element value, LogRecord& record) {
  simdjson::dom::array recipients;
  if (value.get(recipients) != simdjson::SUCCESS) return;
  for (element item : recipients) {
    simdjson::dom::object object;
    if (item.get(object) != simdjson::SUCCESS) continue;
    RecipientEntry entry;
    for (auto field : object) {
      if (field.key == "address") entry.address = text(field.value);
      else if (field.key == "reply") entry.reply = text(field.value);
    }
    record.recipients.push_back(entry);
  }
}

void readHits(element value, LogRecord& record) {
  simdjson::dom::array hits;
  if (value.get(hits) != simdjson::SUCCESS) return;
  for (element hit : hits) {
    simdjson::dom::object object;
    if (hit.get(object) != simdjson::SUCCESS) continue;
    for (auto field : object)
      if (field.key == "rule") record.rules.push_back(text(field.value));
  }
}

void readStages(element value, LogRecord& record) {
  simdjson::dom::array stages;
  if (value.get(stages) != simdjson::SUCCESS) return;
  for (element item : stages) {
    simdjson::dom::object object;
    if (item.get(object) != simdjson::SUCCESS) continue;
    StageEntry stage;
    for (auto field : object) {
      std::string_view key = field.key;
      if (key == "stage") stage.name = text(field.value);
      else if (key == "verdict") stage.verdict = text(field.value);
      else if (key == "reason") stage.reason = text(field.value);
      else if (key == "reply") stage.reply = text(field.value);
      else if (key == "shadow") {
        bool shadow = false;
        stage.shadow = field.value.get(shadow) == simdjson::SUCCESS && shadow;
      } else if (key == "allowed_by") stage.allowed = !text(field.value).empty();
      else if (key == "hits") readHits(field.value, record);
    }
    record.stages.push_back(stage);
  }
}

}  // namespace

RecordReader::RecordReader() : parser_(std::make_unique<simdjson::dom::parser>()) {}
RecordReader::~RecordReader() = default;

const LogRecord* RecordReader::read(std::string_view line) {
  // The buffers keep their capacity from record to record: no allocation per line once warm.
  auto recipients = std::move(record_.recipients);
  auto stages = std::move(record_.stages);
  auto rules = std::move(record_.rules);
  recipients.clear();
  stages.clear();
  rules.clear();
  record_ = LogRecord{};
  record_.recipients = std::move(recipients);
  record_.stages = std::move(stages);
  record_.rules = std::move(rules);
  LogRecord& record = record_;
  record.line = line;
  simdjson::dom::object object;
  if (parser_->parse(line.data(), line.size(), false).get(object) != simdjson::SUCCESS) return nullptr;
  bool typed = false;
  for (auto field : object) {
    std::string_view key = field.key;
    element value = field.value;
    // Most frequent first: every record has these.
    if (key == "type") typed = value.get(record.type) == simdjson::SUCCESS;
    else if (key == "time") {
      record.time = text(value);
      record.time_ms = parseAbsoluteTime(record.time);
    } else if (key == "action") record.action = text(value);
    else if (key == "reply") record.reply = text(value);
    else if (key == "client") readClient(value, record);
    else if (key == "sender") record.has_sender = value.get(record.sender) == simdjson::SUCCESS;
    else if (key == "recipients") readRecipients(value, record);
    else if (key == "stages") readStages(value, record);
    else if (key == "helo") record.helo = text(value);
    else if (key == "downstream_reply") record.downstream_reply = text(value);
    else if (key == "reason") record.reason = text(value);
    else if (key == "command") record.command = text(value);
    else if (key == "subject") record.subject = text(value);
    else if (key == "message_id") record.message_id = text(value);
    else if (key == "queue_id") record.queue_id = text(value);
    else if (key == "dropped") record.dropped = count(value);
    else if (key == "dropped_total") record.dropped_total = count(value);
  }
  return typed ? &record : nullptr;
}

}  // namespace mailgate::logtool
