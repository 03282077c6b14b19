#include "rules/html_text.h"
#include "gateway/util/ascii.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace mailgate::rules {
namespace {

struct NamedEntity {
  std::string_view name;
  unsigned long code_point;
};

// HTML 4.01's character entity references (plus &apos;), sorted by name for binary search.
constexpr NamedEntity named_entities[] = {
    {"AElig", 0xC6}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Agrave", 0xC0}, {"Alpha", 0x391}, {"Aring", 0xC5},
    {"Atilde", 0xC3}, {"Auml", 0xC4}, {"Beta", 0x392}, {"Ccedil", 0xC7}, {"Chi", 0x3A7}, {"Dagger", 0x2021},
    {"Delta", 0x394}, {"ETH", 0xD0}, {"Eacute", 0xC9}, {"Ecirc", 0xCA}, {"Egrave", 0xC8}, {"Epsilon", 0x395},
    {"Eta", 0x397}, {"Euml", 0xCB}, {"Gamma", 0x393}, {"Iacute", 0xCD}, {"Icirc", 0xCE}, {"Igrave", 0xCC},
    {"Iota", 0x399}, {"Iuml", 0xCF}, {"Kappa", 0x39A}, {"Lambda", 0x39B}, {"Mu", 0x39C}, {"Ntilde", 0xD1},
    {"Nu", 0x39D}, {"OElig", 0x152}, {"Oacute", 0xD3}, {"Ocirc", 0xD4}, {"Ograve", 0xD2}, {"Omega", 0x3A9},
    {"Omicron", 0x39F}, {"Oslash", 0xD8}, {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"Phi", 0x3A6}, {"Pi", 0x3A0},
    {"Prime", 0x2033}, {"Psi", 0x3A8}, {"Rho", 0x3A1}, {"Scaron", 0x160}, {"Sigma", 0x3A3}, {"THORN", 0xDE},
    {"Tau", 0x3A4}, {"Theta", 0x398}, {"Uacute", 0xDA}, {"Ucirc", 0xDB}, {"Ugrave", 0xD9},
    {"Upsilon", 0x3A5}, {"Uuml", 0xDC}, {"Xi", 0x39E}, {"Yacute", 0xDD}, {"Yuml", 0x178}, {"Zeta", 0x396},
    {"aacute", 0xE1}, {"acirc", 0xE2}, {"acute", 0xB4}, {"aelig", 0xE6}, {"agrave", 0xE0},
    {"alefsym", 0x2135}, {"alpha", 0x3B1}, {"amp", 0x26}, {"and", 0x2227}, {"ang", 0x2220}, {"apos", 0x27},
    {"aring", 0xE5}, {"asymp", 0x2248}, {"atilde", 0xE3}, {"auml", 0xE4}, {"bdquo", 0x201E}, {"beta", 0x3B2},
    {"brvbar", 0xA6}, {"bull", 0x2022}, {"cap", 0x2229}, {"ccedil", 0xE7}, {"cedil", 0xB8}, {"cent", 0xA2},
    {"chi", 0x3C7}, {"circ", 0x2C6}, {"clubs", 0x2663}, {"cong", 0x2245}, {"copy", 0xA9}, {"crarr", 0x21B5},
    {"cup", 0x222A}, {"curren", 0xA4}, {"dArr", 0x21D3}, {"dagger", 0x2020}, {"darr", 0x2193}, {"deg", 0xB0},
    {"delta", 0x3B4}, {"diams", 0x2666}, {"divide", 0xF7}, {"eacute", 0xE9}, {"ecirc", 0xEA},
    {"egrave", 0xE8}, {"empty", 0x2205}, {"emsp", 0x2003}, {"ensp", 0x2002}, {"epsilon", 0x3B5},
    {"equiv", 0x2261}, {"eta", 0x3B7}, {"eth", 0xF0}, {"euml", 0xEB}, {"euro", 0x20AC}, {"exist", 0x2203},
    {"fnof", 0x192}, {"forall", 0x2200}, {"frac12", 0xBD}, {"frac14", 0xBC}, {"frac34", 0xBE},
    {"frasl", 0x2044}, {"gamma", 0x3B3}, {"ge", 0x2265}, {"gt", 0x3E}, {"hArr", 0x21D4}, {"harr", 0x2194},
    {"hearts", 0x2665}, {"hellip", 0x2026}, {"iacute", 0xED}, {"icirc", 0xEE}, {"iexcl", 0xA1},
    {"igrave", 0xEC}, {"image", 0x2111}, {"infin", 0x221E}, {"int", 0x222B}, {"iota", 0x3B9},
    {"iquest", 0xBF}, {"isin", 0x2208}, {"iuml", 0xEF}, {"kappa", 0x3BA}, {"lArr", 0x21D0},
    {"lambda", 0x3BB}, {"lang", 0x2329}, {"laquo", 0xAB}, {"larr", 0x2190}, {"lceil", 0x2308},
    {"ldquo", 0x201C}, {"le", 0x2264}, {"lfloor", 0x230A}, {"lowast", 0x2217}, {"loz", 0x25CA},
    {"lrm", 0x200E}, {"lsaquo", 0x2039}, {"lsquo", 0x2018}, {"lt", 0x3C}, {"macr", 0xAF}, {"mdash", 0x2014},
    {"micro", 0xB5}, {"middot", 0xB7}, {"minus", 0x2212}, {"mu", 0x3BC}, {"nabla", 0x2207}, {"nbsp", 0xA0},
    {"ndash", 0x2013}, {"ne", 0x2260}, {"ni", 0x220B}, {"not", 0xAC}, {"notin", 0x2209}, {"nsub", 0x2284},
    {"ntilde", 0xF1}, {"nu", 0x3BD}, {"oacute", 0xF3}, {"ocirc", 0xF4}, {"oelig", 0x153}, {"ograve", 0xF2},
    {"oline", 0x203E}, {"omega", 0x3C9}, {"omicron", 0x3BF}, {"oplus", 0x2295}, {"or", 0x2228},
    {"ordf", 0xAA}, {"ordm", 0xBA}, {"oslash", 0xF8}, {"otilde", 0xF5}, {"otimes", 0x2297}, {"ouml", 0xF6},
    {"para", 0xB6}, {"part", 0x2202}, {"permil", 0x2030}, {"perp", 0x22A5}, {"phi", 0x3C6}, {"pi", 0x3C0},
    {"piv", 0x3D6}, {"plusmn", 0xB1}, {"pound", 0xA3}, {"prime", 0x2032}, {"prod", 0x220F}, {"prop", 0x221D},
    {"psi", 0x3C8}, {"quot", 0x22}, {"rArr", 0x21D2}, {"radic", 0x221A}, {"rang", 0x232A}, {"raquo", 0xBB},
    {"rarr", 0x2192}, {"rceil", 0x2309}, {"rdquo", 0x201D}, {"real", 0x211C}, {"reg", 0xAE},
    {"rfloor", 0x230B}, {"rho", 0x3C1}, {"rlm", 0x200F}, {"rsaquo", 0x203A}, {"rsquo", 0x2019},
    {"sbquo", 0x201A}, {"scaron", 0x161}, {"sdot", 0x22C5}, {"sect", 0xA7}, {"shy", 0xAD}, {"sigma", 0x3C3},
    {"sigmaf", 0x3C2}, {"sim", 0x223C}, {"spades", 0x2660}, {"sub", 0x2282}, {"sube", 0x2286},
    {"sum", 0x2211}, {"sup", 0x2283}, {"sup1", 0xB9}, {"sup2", 0xB2}, {"sup3", 0xB3}, {"supe", 0x2287},
    {"szlig", 0xDF}, {"tau", 0x3C4}, {"there4", 0x2234}, {"theta", 0x3B8}, {"thetasym", 0x3D1},
    {"thinsp", 0x2009}, {"thorn", 0xFE}, {"tilde", 0x2DC}, {"times", 0xD7}, {"trade", 0x2122},
    {"uArr", 0x21D1}, {"uacute", 0xFA}, {"uarr", 0x2191}, {"ucirc", 0xFB}, {"ugrave", 0xF9}, {"uml", 0xA8},
    {"upsih", 0x3D2}, {"upsilon", 0x3C5}, {"uuml", 0xFC}, {"weierp", 0x2118}, {"xi", 0x3BE},
    {"yacute", 0xFD}, {"yen", 0xA5}, {"yuml", 0xFF}, {"zeta", 0x3B6}, {"zwj", 0x200D}, {"zwnj", 0x200C},
};

bool isAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool isHtmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Elements whose start and end tags put whitespace into the text (HTML.pm html_whitespace).
enum class Break { None, Space, Line, Paragraph };
Break breakOf(std::string_view tag) {
  if (tag == "br" || tag == "div") return Break::Line;
  if (tag == "p" || tag == "hr" || tag == "blockquote" || tag == "pre" || tag == "listing" || tag == "plaintext" ||
      tag == "xmp" || tag == "title")
    return Break::Paragraph;
  if (tag == "li" || tag == "th" || tag == "td" || tag == "dt" || tag == "dd" || tag == "embed") return Break::Space;
  if (tag.size() == 2 && tag[0] == 'h' && tag[1] >= '1' && tag[1] <= '6') return Break::Space;
  return Break::None;
}

// The attribute that holds a URI for this element, as HTML.pm html_uri reads them.
std::vector<std::string_view> uriAttributes(std::string_view tag) {
  if (tag == "body" || tag == "table" || tag == "tr" || tag == "td") return {"background"};
  if (tag == "a" || tag == "area" || tag == "link") return {"href", "data-saferedirecturl"};
  if (tag == "img" || tag == "frame" || tag == "iframe" || tag == "embed" || tag == "script" || tag == "bgsound")
    return {"src"};
  if (tag == "form") return {"action"};
  if (tag == "base") return {"href"};
  return {};
}

struct Tag {
  std::string name;  // lower case, without '/'
  bool end = false;
  std::vector<std::pair<std::string, std::string>> attributes;  // names lower case, values decoded
};

// Reads the tag starting at html[at] == '<'; returns the index after its '>'.
std::size_t readTag(std::string_view html, std::size_t at, Tag& tag) {
  std::size_t i = at + 1;
  if (i < html.size() && html[i] == '/') {
    tag.end = true;
    ++i;
  }
  std::size_t name_start = i;
  while (i < html.size() && (isAlnum(html[i]) || html[i] == ':' || html[i] == '-' || html[i] == '_')) ++i;
  tag.name = asciiLower(html.substr(name_start, i - name_start));
  while (i < html.size() && html[i] != '>') {
    if (isHtmlSpace(html[i]) || html[i] == '/') {
      ++i;
      continue;
    }
    std::size_t attr_start = i;
    while (i < html.size() && !isHtmlSpace(html[i]) && html[i] != '=' && html[i] != '>') ++i;
    std::string name = asciiLower(html.substr(attr_start, i - attr_start));
    while (i < html.size() && isHtmlSpace(html[i])) ++i;
    std::string value;
    if (i < html.size() && html[i] == '=') {
      ++i;
      while (i < html.size() && isHtmlSpace(html[i])) ++i;
      if (i < html.size() && (html[i] == '"' || html[i] == '\'')) {
        char quote = html[i++];
        std::size_t end = html.find(quote, i);
        if (end == std::string_view::npos) end = html.size();
        value = decodeHtmlEntities(html.substr(i, end - i));
        i = end < html.size() ? end + 1 : end;
      } else {
        std::size_t value_start = i;
        while (i < html.size() && !isHtmlSpace(html[i]) && html[i] != '>') ++i;
        value = decodeHtmlEntities(html.substr(value_start, i - value_start));
      }
    }
    if (!name.empty()) tag.attributes.emplace_back(std::move(name), std::move(value));
  }
  return i < html.size() ? i + 1 : i;
}

std::string htmlTrimmed(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && isHtmlSpace(text[begin])) ++begin;
  while (end > begin && isHtmlSpace(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

// Builds the rendered text as HTML.pm's display_text does: text runs with whitespace collapsed,
// whitespace elements that swallow the space before and after them.
class TextBuilder {
 public:
  void text(std::string_view raw) {
    std::string collapsed;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      bool nbsp = raw[i] == '\xc2' && i + 1 < raw.size() && raw[i + 1] == '\xa0';
      if (isHtmlSpace(raw[i]) || nbsp) {
        if (nbsp) ++i;
        if (collapsed.empty() || collapsed.back() != ' ') collapsed += ' ';
        while (i + 1 < raw.size() && isHtmlSpace(raw[i + 1])) ++i;
      } else {
        collapsed += raw[i];
      }
    }
    if (last_was_whitespace_ && collapsed.starts_with(' ')) collapsed.erase(0, 1);
    if (collapsed.empty()) return;
    out_ += collapsed;
    last_was_whitespace_ = false;
  }
  void whitespace(Break kind) {
    if (kind == Break::None) return;
    if (!last_was_whitespace_ && out_.ends_with(' ')) out_.pop_back();
    out_ += kind == Break::Line ? "\n" : kind == Break::Paragraph ? "\n\n" : " ";
    last_was_whitespace_ = true;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  bool last_was_whitespace_ = false;
};

// Where the raw text of <script>/<style> ends: at "</name", case-insensitive.
std::size_t rawTextEnd(std::string_view html, std::size_t from, std::string_view name) {
  for (std::size_t at = html.find("</", from); at != std::string_view::npos; at = html.find("</", at + 2)) {
    if (asciiLower(html.substr(at + 2, name.size())) == name) return at;
  }
  return html.size();
}

}  // namespace

void appendUtf8(std::string& out, unsigned long code_point) {
  if (code_point == 0 || code_point > 0x10ffff || (code_point >= 0xd800 && code_point <= 0xdfff)) code_point = 0xfffd;
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xc0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xe0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  }
}

std::string decodeHtmlEntities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    std::size_t j = i + 1;
    if (j < text.size() && text[j] == '#') {
      ++j;
      bool hex = j < text.size() && (text[j] == 'x' || text[j] == 'X');
      if (hex) ++j;
      unsigned long value = 0;
      std::size_t digits_start = j;
      while (j < text.size() && (hex ? std::isxdigit(static_cast<unsigned char>(text[j])) : std::isdigit(static_cast<unsigned char>(text[j])))) {
        if (value <= 0x10ffff) value = value * (hex ? 16 : 10) + static_cast<unsigned long>(std::isdigit(static_cast<unsigned char>(text[j])) ? text[j] - '0' : asciiLower(text[j]) - 'a' + 10);
        ++j;
      }
      if (j == digits_start) {  // "&#" with no digits: not a reference
        out += '&';
        continue;
      }
      appendUtf8(out, value);
      if (j < text.size() && text[j] == ';') ++j;
      i = j - 1;
      continue;
    }
    while (j < text.size() && isAlnum(text[j]) && j - i <= 10) ++j;
    std::string_view name = text.substr(i + 1, j - i - 1);
    const NamedEntity* found = std::lower_bound(std::begin(named_entities), std::end(named_entities), name,
                                                [](const NamedEntity& e, std::string_view n) { return e.name < n; });
    bool known = found != std::end(named_entities) && found->name == name;
    bool terminated = j < text.size() && text[j] == ';';
    // Browsers also take the common ones without ';' (as in "&amp" or "&nbsp").
    bool legacy = name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "nbsp";
    if (known && (terminated || legacy)) {
      appendUtf8(out, found->code_point);
      i = terminated ? j : j - 1;
    } else {
      out += '&';
    }
  }
  return out;
}

HtmlText HtmlText::render(std::string_view html) {
  HtmlText result;
  TextBuilder builder;
  std::size_t text_start = 0;
  auto flushText = [&](std::size_t end) {
    if (end > text_start) builder.text(decodeHtmlEntities(html.substr(text_start, end - text_start)));
  };
  std::size_t i = 0;
  while (i < html.size()) {
    std::size_t lt = html.find('<', i);
    if (lt == std::string_view::npos) break;
    char next = lt + 1 < html.size() ? html[lt + 1] : '\0';
    if (next == '!' || next == '?') {
      flushText(lt);
      std::size_t end;
      if (html.substr(lt, 4) == "<!--") {
        end = html.find("-->", lt + 4);
        end = end == std::string_view::npos ? html.size() : end + 3;
      } else {
        end = html.find('>', lt);
        end = end == std::string_view::npos ? html.size() : end + 1;
      }
      i = text_start = end;
      continue;
    }
    if (!isAlpha(next) && !(next == '/' && lt + 2 < html.size() && isAlpha(html[lt + 2]))) {
      i = lt + 1;  // a '<' that starts no tag is text
      continue;
    }
    flushText(lt);
    Tag tag;
    i = text_start = readTag(html, lt, tag);
    // HTML.pm bug 5009: both <p> and </p> put their whitespace in.
    builder.whitespace(breakOf(tag.name));
    if (tag.end) continue;
    for (std::string_view wanted : uriAttributes(tag.name)) {
      for (const auto& [name, value] : tag.attributes)
        if (name == wanted) result.uris.push_back(htmlTrimmed(value));
    }
    if (tag.name == "meta") {
      // <meta http-equiv="refresh" content="0; url=http://...">
      std::string equiv, content;
      for (const auto& [name, value] : tag.attributes) {
        if (name == "http-equiv") equiv = asciiLower(value);
        if (name == "content") content = value;
      }
      std::string lower_content = asciiLower(content);
      std::size_t url = lower_content.find("url");
      if (equiv.find("refresh") != std::string::npos && url != std::string::npos) {
        std::size_t at = url + 3;
        while (at < content.size() && isHtmlSpace(content[at])) ++at;
        if (at < content.size() && content[at] == '=') {
          std::string target = htmlTrimmed(std::string_view(content).substr(at + 1));
          target = target.substr(0, target.find(';'));
          result.uris.push_back(htmlTrimmed(target));
        }
      }
    }
    if (tag.name == "script" || tag.name == "style") {
      // Their content is code, never shown: skip to the end tag (its whitespace, if any, is none).
      std::size_t end = rawTextEnd(html, i, tag.name);
      if (end < html.size()) {
        Tag closing;
        end = readTag(html, end, closing);
      }
      i = text_start = end;
    }
  }
  flushText(html.size());
  result.text = builder.take();
  return result;
}

}  // namespace mailgate::rules
