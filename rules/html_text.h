#pragma once
// HTML reduced to the text a reader sees, and the URIs its tags point at, the way SpamAssassin's
// HTML.pm renders a text/html part for body and uri rules: tags dropped, script and style content
// dropped, comments dropped, entities decoded, whitespace in text collapsed, line breaks where
// block elements are (br/div: a newline; p, hr, blockquote, pre, title: a blank line; li, td, th,
// dt, dd, h1-h6: a space).
//
// This is a small, careful hand pass rather than a full HTML5 tokenizer: body rules only need the
// visible words in order, and every construct it does not know (CDATA, processing instructions,
// malformed tags) is dropped rather than shown as text.

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::rules {

struct HtmlText {
  std::string text;               // UTF-8
  std::vector<std::string> uris;  // href, src, action, background, meta refresh, in document order

  // `html` must already be UTF-8 (the part's charset converted).
  static HtmlText render(std::string_view html);
};

// Decodes HTML character references (&amp; &#233; &#xE9; and the HTML 4 named set) into UTF-8.
std::string decodeHtmlEntities(std::string_view text);
// Appends the UTF-8 encoding of `code_point` (U+FFFD for what is not a scalar value).
void appendUtf8(std::string& out, unsigned long code_point);

}  // namespace mailgate::rules
