#pragma once
// Fills a MessageView from its message: walks the MIME tree with GMime (bounded in parts and
// depth), decodes transfer encodings and charsets, renders HTML, and builds the body, rawbody,
// uri and mimeheader views the way SpamAssassin's Message.pm builds them.

#include "rules/message_view.h"

namespace mailgate::rules {

class MessageDecoder {
 public:
  // Reads view.full_ and view.headers_ (already set); fills the rest.
  static void decode(MessageView& view);
};

}  // namespace mailgate::rules
