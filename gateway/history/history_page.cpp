#include "gateway/history/history_page.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/logtool/decision.h"
#include "gateway/logtool/log_options.h"
#include "gateway/logtool/log_summary.h"
#include "gateway/logtool/time_bound.h"

namespace mailgate {
namespace {

using Clock = std::chrono::steady_clock;

// The search form's fields and the `mailgate log` option each one is.
struct Field {
  const char* name;
  const char* option;
  const char* label;
  const char* hint;
};
constexpr std::array<Field, 10> fields{{
    {"from", "--from", "Sender", "user@example.com or example.com"},
    {"to", "--to", "Recipient", "address or domain"},
    {"subject", "--subject", "Subject", "words in the subject"},
    {"client", "--client", "Client", "192.0.2.7 or 192.0.2.0/24"},
    {"action", "--action", "Action", ""},
    {"stage", "--stage", "Stage", "the stage that decided"},
    {"rule", "--rule", "Rule", "a rule that hit"},
    {"message_id", "--message-id", "Message-ID", ""},
    {"since", "--since", "Since", "2h, 3d or 2026-12-07 14:00"},
    {"until", "--until", "Until", "UTC"},
}};
constexpr std::array<const char*, 6> actions{"accept", "tag", "tempfail", "reject", "abandoned", "none"};

constexpr const char* style = R"(<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
nav a{margin-right:1em}
form{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:.5em 1em;margin:1em 0}
label{display:flex;flex-direction:column;font-size:.85em}
input,select{font-size:1em;padding:.2em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top;font-size:.9em}
td.num{text-align:right}
.accept{color:#1a7f37}.tag{color:#0550ae}.tempfail{color:#9a6700}.reject{color:#cf222e}
.error{color:#cf222e;font-weight:bold}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
.muted{color:#666}
</style>)";

std::string pageHead(std::string_view title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + htmlEscaped(title) +
         " — mailgate</title>" + style +
         "</head><body><nav><a href=\"/history\">Search</a><a href=\"/history/summary\">Summary</a></nav><h1>" +
         htmlEscaped(title) + "</h1>\n";
}
constexpr const char* page_end = "</body></html>\n";

std::string urlEncoded(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// What the form was given, to fill it again and to build the paging links.
struct Search {
  std::vector<std::pair<std::string, std::string>> given;  // field name, value
  std::string words;                                      // q
  logtool::LogOptions options;
};

std::expected<Search, std::string> searchFrom(const HistoryPage::Argument& argument, bool default_day) {
  Search search;
  std::vector<std::string> arguments;
  for (const Field& field : fields) {
    auto value = argument(field.name);
    if (!value || value->empty()) continue;
    search.given.emplace_back(field.name, *value);
    arguments.push_back(std::string(field.option) + "=" + *value);
  }
  if (default_day && !argument("since")) arguments.push_back("--since=24h");
  if (auto words = argument("q"); words && !words->empty()) {
    search.words = *words;
    search.given.emplace_back("q", *words);
    arguments.push_back("--");
    std::string_view rest = *words;
    while (!rest.empty()) {
      auto space = rest.find(' ');
      if (space != 0) arguments.emplace_back(rest.substr(0, space));
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
  }
  auto options = logtool::parseLogArguments(arguments, logtool::currentTime());
  if (!options) return std::unexpected(options.error());
  search.options = std::move(*options);
  return search;
}

std::string givenValue(const Search* search, std::string_view name) {
  if (search == nullptr) return {};
  for (const auto& [field, value] : search->given)
    if (field == name) return value;
  return {};
}

std::string searchForm(const Search* search, const char* action_url) {
  std::string out = std::string("<form id=\"search\" method=\"get\" action=\"") + action_url + "\">";
  for (const Field& field : fields) {
    std::string value = givenValue(search, field.name);
    out += std::string("<label>") + field.label;
    if (std::string_view(field.name) == "action") {
      out += "<select id=\"action\" name=\"action\"><option value=\"\">any</option>";
      for (const char* action : actions)
        out += std::string("<option") + (value == action ? " selected" : "") + ">" + action + "</option>";
      out += "</select>";
    } else {
      out += std::string("<input id=\"") + field.name + "\" name=\"" + field.name + "\" value=\"" + htmlEscaped(value) +
             "\" placeholder=\"" + field.hint + "\">";
    }
    out += "</label>";
  }
  out += "<label>Text<input id=\"q\" name=\"q\" value=\"" + htmlEscaped(givenValue(search, "q")) +
         "\" placeholder=\"anywhere in the record\"></label>";
  out += "<label>&nbsp;<button id=\"submit\" type=\"submit\">Search</button></label></form>\n";
  return out;
}

std::string queryString(const Search& search, std::string_view extra) {
  std::string out;
  for (const auto& [name, value] : search.given) out += (out.empty() ? "?" : "&") + name + "=" + urlEncoded(value);
  if (!extra.empty()) out += (out.empty() ? "?" : "&") + std::string(extra);
  return out;
}

std::string joinedRecipients(const logtool::LogRecord& record) {
  std::string out;
  for (const auto& recipient : record.recipients) out += (out.empty() ? "" : ", ") + std::string(recipient.address);
  return out;
}

std::string decisionRow(int64_t id, const logtool::LogRecord& record) {
  logtool::Decision decision = logtool::decisionOf(record);
  std::string action(record.action.empty() ? record.type : record.action);
  std::string sender = record.has_sender ? (record.sender.empty() ? "<>" : std::string(record.sender)) : "";
  return "<tr class=\"decision\" data-id=\"" + std::to_string(id) + "\"><td><a class=\"detail\" href=\"/history/decision?id=" +
         std::to_string(id) + "\">" + htmlEscaped(record.time) + "</a></td><td>" + htmlEscaped(record.client_ip) +
         "</td><td class=\"sender\">" + htmlEscaped(sender) + "</td><td class=\"recipients\">" +
         htmlEscaped(joinedRecipients(record)) + "</td><td class=\"subject\">" + htmlEscaped(record.subject) +
         "</td><td class=\"action " + htmlEscaped(action) + "\">" + htmlEscaped(action) + "</td><td>" +
         htmlEscaped(record.reply) + "</td><td class=\"stage\">" + htmlEscaped(decision.stage) + "</td><td>" +
         htmlEscaped(decision.reason) + "</td></tr>\n";
}

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string formatted(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

std::optional<int64_t> idArgument(const HistoryPage::Argument& argument, const char* name) {
  auto value = argument(name);
  if (!value || value->empty() || value->size() > 18) return std::nullopt;
  if (!std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return std::stoll(*value);
}

// A page that says what went wrong; with `form_url`, the empty search form above it.
PageReply errorPage(unsigned status, std::string_view title, std::string_view problem, const char* form_url = nullptr) {
  return {status, pageHead(title) + (form_url != nullptr ? searchForm(nullptr, form_url) : std::string()) +
                      "<p class=\"error\" id=\"error\">" + htmlEscaped(problem) + "</p>" + page_end};
}

// What the search and the summary both start from: the form's filter, and the history to read.
struct SearchRequest {
  Search search;
  HistoryReader history;
};

std::expected<SearchRequest, PageReply> searchRequest(const HistoryPage::Argument& argument, const std::string& path,
                                                      std::string_view title, const char* form_url, bool default_day) {
  auto parsed = searchFrom(argument, default_day);
  if (!parsed) return std::unexpected(errorPage(400, title, parsed.error(), form_url));
  auto history = HistoryReader::open(path);
  if (!history) return std::unexpected(errorPage(503, title, history.error()));
  return SearchRequest{std::move(*parsed), std::move(*history)};
}

}  // namespace

std::string htmlEscaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

PageReply HistoryPage::answer(std::string_view url, const Argument& argument) const {
  if (url == "/history" || url == "/history/") return search(argument);
  if (url == "/history/decision") return decision(argument);
  if (url == "/history/summary") return summary(argument);
  return {404, pageHead("Not found") + "<p>No such page: /history, /history/decision?id=N, /history/summary.</p>" + page_end};
}

PageReply HistoryPage::search(const Argument& argument) const {
  auto start = Clock::now();
  auto request = searchRequest(argument, path_, "Decision history", "/history", false);
  if (!request) return std::move(request.error());
  Search* parsed = &request->search;
  HistoryReader* history = &request->history;

  HistoryScan order;
  order.before_id = idArgument(argument, "before");
  order.after_id = idArgument(argument, "after");
  // Paging forward reads oldest first from the page's newest row, then shows them newest first.
  order.newest_first = !order.after_id;
  std::vector<std::pair<int64_t, std::string>> rows;
  bool more = false;
  auto scanned = history->scan(parsed->options.filter, order,
                               [&](int64_t id, std::string_view, const logtool::LogRecord& record) {
                                 if (rows.size() == page_rows) {
                                   more = true;
                                   return false;
                                 }
                                 rows.emplace_back(id, decisionRow(id, record));
                                 return true;
                               });
  if (!scanned) return errorPage(500, "Decision history", scanned.error());
  if (order.after_id) std::reverse(rows.begin(), rows.end());
  double took = millisecondsSince(start);

  std::string body = pageHead("Decision history") + searchForm(parsed, "/history");
  body += "<p id=\"status\">" + std::to_string(rows.size()) + (rows.size() == 1 ? " decision" : " decisions") +
          (rows.empty() ? "" : ", newest first") + " <span class=\"muted\">(" + formatted("%.1f", took) + " ms)</span></p>\n";
  body += "<table id=\"results\"><thead><tr><th>Time (UTC)</th><th>Client</th><th>Sender</th><th>Recipients</th>"
          "<th>Subject</th><th>Action</th><th>Reply</th><th>Stage</th><th>Reason</th></tr></thead><tbody>\n";
  for (const auto& [id, row] : rows) body += row;
  body += "</tbody></table>\n<p id=\"paging\">";
  bool newer = order.before_id || (order.after_id && more);
  bool older = order.after_id || more;
  if (newer && !rows.empty())
    body += "<a id=\"newer\" href=\"/history" + queryString(*parsed, "after=" + std::to_string(rows.front().first)) + "\">← Newer</a> ";
  if (older && !rows.empty())
    body += "<a id=\"older\" href=\"/history" + queryString(*parsed, "before=" + std::to_string(rows.back().first)) + "\">Older →</a>";
  body += "</p>\n";
  body += page_end;
  return {200, std::move(body)};
}

PageReply HistoryPage::decision(const Argument& argument) const {
  auto id = idArgument(argument, "id");
  if (!id) return errorPage(400, "Decision", "?id= needs a decision's number");
  auto history = HistoryReader::open(path_);
  if (!history) return errorPage(503, "Decision", history.error());
  auto line = history->record(*id);
  if (!line) return errorPage(404, "Decision", "No decision " + std::to_string(*id) + " (past the retention?)");
  nlohmann::json record = nlohmann::json::parse(*line, nullptr, false);
  if (!record.is_object()) return errorPage(500, "Decision", "The stored record does not read.");

  auto text = [](const nlohmann::json& value) -> std::string {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_null()) return "";
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  auto field = [&](const nlohmann::json& object, const char* name) {
    return object.is_object() && object.contains(name) ? text(object[name]) : std::string();
  };
  std::string body = pageHead("Decision " + std::to_string(*id));
  body += "<table id=\"facts\">";
  auto fact = [&](const char* label, const std::string& value, const char* id_attribute) {
    if (value.empty()) return;
    body += std::string("<tr><th>") + label + "</th><td id=\"" + id_attribute + "\">" + htmlEscaped(value) + "</td></tr>";
  };
  fact("Time (UTC)", field(record, "time"), "time");
  fact("Record", field(record, "type"), "type");
  fact("Action", field(record, "action"), "action");
  fact("Reply", field(record, "reply"), "reply");
  fact("Downstream's reply", field(record, "downstream_reply"), "downstream_reply");
  fact("Downstream queue id", field(record, "queue_id"), "queue_id");
  const nlohmann::json& client = record.contains("client") ? record["client"] : nlohmann::json();
  fact("Client", field(client, "ip") + (field(client, "port").empty() ? "" : " port " + field(client, "port")), "client");
  fact("HELO", field(record, "helo"), "helo");
  if (record.contains("sender")) fact("Sender", text(record["sender"]).empty() ? "<>" : text(record["sender"]), "sender");
  fact("Score", field(record, "score"), "score");
  fact("Subject", field(record, "subject"), "subject");
  fact("Message-ID", field(record, "message_id"), "message_id");
  fact("Size", field(record, "size"), "size");
  fact("Reason", field(record, "reason"), "reason");
  fact("Command", field(record, "command"), "command");
  body += "</table>\n";
  if (record.contains("recipients") && record["recipients"].is_array()) {
    body += "<h2>Recipients</h2><table id=\"recipients\"><tr><th>Address</th><th>Reply</th></tr>";
    for (const auto& recipient : record["recipients"])
      body += "<tr><td>" + htmlEscaped(recipient.is_object() ? field(recipient, "address") : text(recipient)) + "</td><td>" +
              htmlEscaped(field(recipient, "reply")) + "</td></tr>";
    body += "</table>\n";
  }
  if (record.contains("stages") && record["stages"].is_array()) {
    body += "<h2>Stages</h2><table id=\"stages\"><tr><th>Stage</th><th>Verdict</th><th>Reason</th><th>Reply</th><th>ms</th></tr>";
    for (const auto& stage : record["stages"]) {
      std::string verdict = field(stage, "verdict");
      if (stage.is_object() && stage.value("shadow", false)) verdict += " (shadow)";
      body += "<tr class=\"stage\"><td>" + htmlEscaped(field(stage, "stage")) + "</td><td class=\"" + htmlEscaped(field(stage, "verdict")) +
              "\">" + htmlEscaped(verdict) + "</td><td>" + htmlEscaped(field(stage, "reason")) + "</td><td>" +
              htmlEscaped(field(stage, "reply")) + "</td><td class=\"num\">" + htmlEscaped(field(stage, "ms")) + "</td></tr>";
      if (stage.is_object() && stage.contains("hits") && stage["hits"].is_array() && !stage["hits"].empty()) {
        body += "<tr><td></td><td colspan=\"4\"><table class=\"hits\"><tr><th>Rule</th><th>Score</th><th>Description</th></tr>";
        for (const auto& hit : stage["hits"])
          body += "<tr class=\"hit\"><td>" + htmlEscaped(field(hit, "rule")) + "</td><td class=\"num\">" + htmlEscaped(field(hit, "score")) +
                  "</td><td>" + htmlEscaped(field(hit, "description")) + "</td></tr>";
        body += "</table></td></tr>";
      }
    }
    body += "</table>\n";
  }
  body += "<h2>The record</h2><pre id=\"record\">" + htmlEscaped(record.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "</pre>\n";
  body += page_end;
  return {200, std::move(body)};
}

PageReply HistoryPage::summary(const Argument& argument) const {
  auto start = Clock::now();
  auto request = searchRequest(argument, path_, "Summary", "/history/summary", true);
  if (!request) return std::move(request.error());
  Search* parsed = &request->search;
  HistoryReader* history = &request->history;
  logtool::LogSummary tally;
  auto scanned = history->scan(parsed->options.filter, HistoryScan{},
                               [&](int64_t, std::string_view, const logtool::LogRecord& record) {
                                 tally.add(record, logtool::decisionOf(record));
                                 return true;
                               });
  if (!scanned) return errorPage(500, "Summary", scanned.error());
  nlohmann::json figures = nlohmann::json::parse(tally.json(logtool::LogOptions::default_top));
  double took = millisecondsSince(start);

  std::string body = pageHead("Summary") + searchForm(parsed, "/history/summary");
  if (!argument("since")) body += "<p class=\"muted\">The last 24 hours unless Since says otherwise.</p>";
  body += "<p id=\"records\">" + std::to_string(figures["records"].get<uint64_t>()) + " records <span class=\"muted\">(" +
          formatted("%.1f", took) + " ms)</span></p>\n";
  auto counts = [&](const char* title, const char* id_attribute, const nlohmann::json& object) {
    body += std::string("<h2>") + title + "</h2><table id=\"" + id_attribute + "\">";
    for (const auto& [key, count] : object.items())
      body += "<tr><td class=\"" + htmlEscaped(key) + "\">" + htmlEscaped(key) + "</td><td class=\"num\">" + count.dump() + "</td></tr>";
    body += "</table>\n";
  };
  counts("By action", "actions", figures["actions"]);
  counts("By record kind", "types", figures["types"]);
  auto ranked = [&](const char* title, const char* id_attribute, const nlohmann::json& list, const char* key) {
    body += std::string("<h2>") + title + "</h2><table id=\"" + id_attribute + "\">";
    for (const auto& entry : list) {
      body += "<tr><td>" + htmlEscaped(entry[key].get<std::string>()) + "</td><td class=\"num\">" + entry["count"].dump() + "</td>";
      if (entry.contains("example")) body += "<td class=\"muted\">" + htmlEscaped(entry["example"].get<std::string>()) + "</td>";
      body += "</tr>";
    }
    body += "</table>\n";
  };
  ranked("Top refusal reasons", "refusal_reasons", figures["refusal_reasons"], "reason");
  ranked("Top sender domains", "sender_domains", figures["sender_domains"], "domain");
  ranked("Top client networks", "client_networks", figures["client_networks"], "network");
  ranked("Top rules", "rules", figures["rules"], "rule");

  // Decisions per hour by action: stacked bars, drawn here as SVG (no script, no library).
  const nlohmann::json& hours = figures["hours"];
  constexpr std::array<std::pair<const char*, const char*>, 4> colours{
      {{"accept", "#1a7f37"}, {"tag", "#0550ae"}, {"tempfail", "#bf8700"}, {"reject", "#cf222e"}}};
  uint64_t highest = 1;
  for (const auto& hour : hours) highest = std::max(highest, hour["total"].get<uint64_t>());
  constexpr int bar = 14, gap = 4, height = 160;
  int width = std::max<int>(200, static_cast<int>(hours.size()) * (bar + gap) + 40);
  body += "<h2>Decisions per hour</h2><svg id=\"chart\" role=\"img\" aria-label=\"decisions per hour by action\" width=\"" +
          std::to_string(width) + "\" height=\"" + std::to_string(height + 30) + "\">";
  int x = 30;
  for (const auto& hour : hours) {
    double y = height;
    uint64_t others = hour["total"].get<uint64_t>();
    for (const auto& [action, colour] : colours) {
      uint64_t n = hour.value(action, uint64_t{0});
      others -= n;
      if (n == 0) continue;
      double h = static_cast<double>(n) * height / static_cast<double>(highest);
      y -= h;
      body += "<rect class=\"bar " + std::string(action) + "\" x=\"" + std::to_string(x) + "\" y=\"" + formatted("%.1f", y) +
              "\" width=\"" + std::to_string(bar) + "\" height=\"" + formatted("%.1f", h) + "\" fill=\"" + colour + "\"><title>" +
              htmlEscaped(hour["hour"].get<std::string>()) + " " + action + ": " + std::to_string(n) + "</title></rect>";
    }
    if (others > 0) {
      double h = static_cast<double>(others) * height / static_cast<double>(highest);
      body += "<rect class=\"bar other\" x=\"" + std::to_string(x) + "\" y=\"" + formatted("%.1f", y - h) + "\" width=\"" +
              std::to_string(bar) + "\" height=\"" + formatted("%.1f", h) + "\" fill=\"#8c959f\"></rect>";
    }
    x += bar + gap;
  }
  body += "<text x=\"0\" y=\"12\" font-size=\"11\">" + std::to_string(highest) + "</text><text x=\"0\" y=\"" +
          std::to_string(height) + "\" font-size=\"11\">0</text></svg>\n<p>";
  for (const auto& [action, colour] : colours)
    body += std::string("<span style=\"color:") + colour + "\">■</span> " + action + " ";
  body += "</p>\n<table id=\"hours\"><tr><th>Hour (UTC)</th><th>accept</th><th>tag</th><th>tempfail</th><th>reject</th><th>all</th></tr>";
  for (const auto& hour : hours) {
    body += "<tr><td>" + htmlEscaped(hour["hour"].get<std::string>()) + "</td>";
    for (const auto& [action, colour] : colours) body += "<td class=\"num\">" + std::to_string(hour.value(action, uint64_t{0})) + "</td>";
    body += "<td class=\"num\">" + hour["total"].dump() + "</td></tr>";
  }
  body += "</table>\n";
  body += page_end;
  return {200, std::move(body)};
}

}  // namespace mailgate
