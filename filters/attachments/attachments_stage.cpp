#include "filters/attachments/attachments_stage.h"

#include "filters/attachments/attachment_name.h"
#include "gateway/c/gmime.h"
#include "gateway/smtp/replies.h"
#include "gateway/util/ascii.h"

namespace mailgate {
namespace {

constexpr std::string_view warning_field = "X-Attachment-Warning";

struct Walk {
  AttachmentInspector& inspector;
  std::size_t parts = 0;
  bool cut = false;
};

std::string contentOf(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
  if (wrapper == nullptr) return {};
  GMimeRef<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(wrapper, out.get());
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return array ? std::string(reinterpret_cast<const char*>(array->data), array->len) : std::string();
}

// Every leaf part is a file to look at, but the message's own text (text/* without a name):
// a renamed executable declared as text/plain with a name is still looked at.
void walk(GMimeObject* object, int depth, Walk& state) {
  if (object == nullptr) return;
  if (++state.parts > AttachmentsStage::max_parts || depth > AttachmentsStage::max_mime_depth) {
    state.cut = true;
    return;
  }
  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* multipart = GMIME_MULTIPART(object);
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; ++i) walk(g_mime_multipart_get_part(multipart, i), depth + 1, state);
    return;
  }
  if (GMIME_IS_MESSAGE_PART(object)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
    if (inner != nullptr) walk(g_mime_message_get_mime_part(inner), depth + 1, state);
    return;
  }
  if (!GMIME_IS_PART(object)) return;
  GMimePart* part = GMIME_PART(object);
  // GMime reads filename= of Content-Disposition, else name= of Content-Type, with RFC 2231
  // continuations and charsets and RFC 2047 words undone.
  const char* filename = g_mime_part_get_filename(part);
  std::string type;
  if (GMimeContentType* content_type = g_mime_object_get_content_type(object)) {
    char* mime_type = g_mime_content_type_get_mime_type(content_type);
    if (mime_type) type = asciiLower(mime_type);
    g_free(mime_type);
  }
  std::string name = filename ? filename : "";
  // RFC 2047 words inside a quoted parameter are not RFC 2047 (§5), but mail programs write them
  // and read them back: a name must be read the way the recipient's program will show it.
  if (name.find("=?") != std::string::npos) {
    char* decoded = g_mime_utils_header_decode_text(nullptr, name.c_str());
    if (decoded) name = decoded;
    g_free(decoded);
  }
  if (name.empty() && type.starts_with("text/")) return;
  state.inspector.inspect(name, type, contentOf(part));
}

Reply refusal(const AttachmentFinding& finding) {
  std::string name = replySafeName(finding.name);
  switch (finding.kind) {
    case AttachmentFinding::Kind::Blocked: break;
    case AttachmentFinding::Kind::Encrypted:
      return Reply::of(554, "5.7.1", "Message refused: attachment \"" + name + "\" is an encrypted archive");
    case AttachmentFinding::Kind::Unchecked:
      return Reply::of(554, "5.7.1", "Message refused: attachment \"" + name + "\" cannot be inspected");
  }
  return Reply::of(554, "5.7.1", "Message refused: attachment \"" + name + "\" is not allowed");
}

const char* kindName(AttachmentFinding::Kind kind) {
  switch (kind) {
    case AttachmentFinding::Kind::Blocked: return "blocked";
    case AttachmentFinding::Kind::Encrypted: return "encrypted";
    case AttachmentFinding::Kind::Unchecked: return "unchecked";
  }
  return "?";
}

void readAction(Settings& settings, std::string_view key, PolicyAction& action, bool accept_allowed) {
  auto text = settings.string(key);
  if (!text) return;
  auto parsed = parseAction(*text);
  if (!parsed || *parsed == PolicyAction::TempFail || (*parsed == PolicyAction::Accept && !accept_allowed))
    settings.fail(key, accept_allowed ? "must be one of accept, tag, reject" : "must be reject or tag");
  else action = *parsed;
}

std::optional<std::vector<std::string>> readGlobs(Settings& settings, std::string_view key) {
  auto globs = settings.strings(key);
  if (!globs) return std::nullopt;
  for (const auto& glob : *globs)
    if (glob.empty() || glob.size() > 255) settings.fail(key, "each pattern must be 1 to 255 characters");
  return globs;
}

}  // namespace

std::unique_ptr<Stage> AttachmentsStage::fromSettings(Settings& settings, StageContext&) {
  Policy policy;
  if (auto block = readGlobs(settings, "block")) policy.rules.block = std::move(*block);
  if (auto types = readGlobs(settings, "block_types")) {
    for (auto& type : *types) type = asciiLower(type);
    policy.rules.block_types = std::move(*types);
  }
  readAction(settings, "action", policy.action, false);
  readAction(settings, "on_encrypted_archive", policy.on_encrypted_archive, true);
  readAction(settings, "on_unchecked_archive", policy.on_unchecked_archive, true);
  if (!settings.ok()) return nullptr;
  if (policy.rules.block.empty() && policy.rules.block_types.empty())
    settings.fail("block", "the attachments stage needs `block` (file-name globs) or `block_types` (MIME types)");
  if (!settings.ok()) return nullptr;
  return std::make_unique<AttachmentsStage>(std::move(policy));
}

Verdict AttachmentsStage::inspect(const Policy& policy, std::string_view message, bool cut) {
  initialiseGMime();
  AttachmentInspector inspector(policy.rules);
  Walk state{inspector};
  GMimeRef<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(message.data(), message.size()));
  GMimeRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GMimeRef<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
  if (parsed) walk(g_mime_message_get_mime_part(parsed.get()), 0, state);

  std::vector<AttachmentFinding> findings = inspector.findings();
  if (cut || state.cut)
    findings.push_back({AttachmentFinding::Kind::Unchecked, "(message)",
                        cut ? "message larger than " + std::to_string(max_message_octets / (1024 * 1024)) + " MiB"
                            : "more MIME parts or nesting than inspected"});
  // The worst finding decides: a blocked file, then an encrypted archive, then one not inspected.
  const AttachmentFinding* decisive = nullptr;
  for (auto kind : {AttachmentFinding::Kind::Blocked, AttachmentFinding::Kind::Encrypted, AttachmentFinding::Kind::Unchecked}) {
    for (const auto& finding : findings)
      if (finding.kind == kind && !decisive) decisive = &finding;
  }
  Verdict verdict;
  if (!decisive) {
    verdict = Verdict::proceed(std::to_string(inspector.filesInspected()) + " files inspected, none blocked");
  } else {
    PolicyAction action = decisive->kind == AttachmentFinding::Kind::Blocked     ? policy.action
                          : decisive->kind == AttachmentFinding::Kind::Encrypted ? policy.on_encrypted_archive
                                                                                  : policy.on_unchecked_archive;
    std::string reason = std::string(kindName(decisive->kind)) + ": " + decisive->name + " (" + decisive->why + ")";
    verdict = verdictFor(action, refusal(*decisive), reason);
    if (verdict.kind == Verdict::Kind::Tag)
      verdict.headers.push_back({std::string(warning_field),
                                 std::string(kindName(decisive->kind)) + " \"" + replySafeName(decisive->name) + "\"", true});
  }
  bool ours = !verdict.headers.empty();
  if (!ours) verdict.headers.push_back({std::string(warning_field), "", true});
  verdict.details.emplace_back("files", inspector.filesInspected());
  std::vector<Details> listed;
  for (const auto& finding : findings)
    listed.push_back({{"kind", kindName(finding.kind)}, {"name", finding.name}, {"why", finding.why}});
  verdict.detail_lists.emplace_back("findings", std::move(listed));
  return verdict;
}

Step AttachmentsStage::check(const StageInput& input) const {
  if (!input.message) return Verdict::proceed("no message");
  return Job([policy = policy_, message = input.message](std::stop_token) {
    auto text = message->readPrefix(max_message_octets);
    if (!text) return Verdict::tempFail(replies::cannotReadMessage(), "reading the message: " + text.error());
    return inspect(*policy, *text, message->size() > max_message_octets);
  });
}

}  // namespace mailgate
