#include "rules/replace_tags.h"
#include "gateway/util/ascii.h"

#include <cctype>
#include <vector>

namespace mailgate::rules {
namespace {

// Perl's `$text =~ s/\Q$start\E$word (.+?)\Q$end\E//`: removes the first such tag, returns its name.
std::string takeTag(std::string& text, const std::string& start, const std::string& end, std::string_view word) {
  std::string opening = start + std::string(word) + " ";
  std::size_t at = text.find(opening);
  while (at != std::string::npos) {
    std::size_t name_start = at + opening.size();
    std::size_t close = text.find(end, name_start + 1);  // .+? takes at least one character
    if (close != std::string::npos) {
      std::string name = text.substr(name_start, close - name_start);
      text.erase(at, close + end.size() - at);
      return name;
    }
    at = text.find(opening, at + 1);
  }
  return {};
}

// Perl's split(/(<[^<>]+>)/, $re): text and tag pieces alternating; a leading empty piece is kept,
// trailing empty ones are dropped.
std::vector<std::string> splitTags(const std::string& text) {
  std::vector<std::string> pieces;
  std::size_t from = 0;
  std::size_t at = 0;
  while ((at = text.find('<', at)) != std::string::npos) {
    std::size_t close = text.find_first_of("<>", at + 1);
    if (close == std::string::npos) break;
    if (text[close] == '<' || close == at + 1) {
      at = close == at + 1 ? at + 1 : close;
      continue;
    }
    pieces.push_back(text.substr(from, at - from));
    pieces.push_back(text.substr(at, close + 1 - at));
    from = at = close + 1;
  }
  pieces.push_back(text.substr(from));
  while (!pieces.empty() && pieces.back().empty()) pieces.pop_back();
  return pieces;
}

// The first "<start>.+?<end>" in `piece`: position and length, or npos.
std::pair<std::size_t, std::size_t> findTag(const std::string& piece, const std::string& start, const std::string& end,
                                            std::size_t from = 0) {
  std::size_t at = piece.find(start, from);
  while (at != std::string::npos) {
    std::size_t close = piece.find(end, at + start.size() + 1);
    if (close != std::string::npos) return {at, close + end.size() - at};
    at = piece.find(start, at + 1);
  }
  return {std::string::npos, 0};
}

}  // namespace

bool ReplaceTags::isSetting(std::string_view keyword) {
  return keyword == "replace_start" || keyword == "replace_end" || keyword == "replace_tag" || keyword == "replace_pre" ||
         keyword == "replace_inter" || keyword == "replace_post" || keyword == "replace_rules";
}

std::expected<void, std::string> ReplaceTags::set(std::string_view keyword, std::string_view value) {
  if (value.empty()) return std::unexpected("missing value for " + std::string(keyword));
  if (keyword == "replace_start") {
    start_ = std::string(value);
  } else if (keyword == "replace_end") {
    end_ = std::string(value);
  } else if (keyword == "replace_rules") {
    for (std::string_view rest = value; !rest.empty();) {
      auto [name, tail] = splitFirstWord(rest);
      if (!name.empty()) rules_.insert(std::string(name));
      rest = tail;
    }
  } else {
    auto [name, replacement] = splitFirstWord(value);
    if (replacement.empty()) return std::unexpected(std::string(keyword) + " " + std::string(name) + ": missing value");
    auto& table = keyword == "replace_tag" ? tags_ : keyword == "replace_pre" ? pre_ : keyword == "replace_inter" ? inter_ : post_;
    table[std::string(name)] = std::string(replacement);
  }
  return {};
}

// ReplaceTags.pm's bound on tags that expand to further tags.
constexpr int max_passes = 6;

std::string ReplaceTags::expand(std::string_view pattern, std::string_view flags) const {
  // ReplaceTags.pm works on qr_to_string() of the compiled rule: "(?i)pattern".
  std::string re = flags.empty() ? std::string(pattern) : "(?" + std::string(flags) + ")" + std::string(pattern);
  const std::string original = re;
  bool again = false;
  int passes = 0;
  do {
    again = false;
    std::string pre_name = takeTag(re, start_, end_, "pre");
    std::string post_name = takeTag(re, start_, end_, "post");
    std::string inter_name = takeTag(re, start_, end_, "inter");
    std::vector<std::string> pieces = splitTags(re);
    auto find = [](const auto& table, const std::string& name) -> const std::string* {
      auto found = table.find(name);
      return found == table.end() || found->second.empty() ? nullptr : &found->second;
    };
    if (const std::string* pre = pre_name.empty() ? nullptr : find(pre_, pre_name)) {
      for (std::string& piece : pieces) {
        auto [at, length] = findTag(piece, start_, end_);
        if (at != std::string::npos) piece.insert(at, *pre);
      }
    }
    if (const std::string* post = post_name.empty() ? nullptr : find(post_, post_name)) {
      for (std::string& piece : pieces) {
        for (auto [at, length] = findTag(piece, start_, end_); at != std::string::npos;
             std::tie(at, length) = findTag(piece, start_, end_, at + length + post->size())) {
          piece.insert(at + length, *post);
        }
      }
    }
    if (const std::string* inter = inter_name.empty() ? nullptr : find(inter_, inter_name)) {
      for (std::string& piece : pieces)
        if (piece.empty()) piece = *inter;
    }
    for (std::string& piece : pieces) {
      auto [at, length] = findTag(piece, start_, end_);
      if (at == std::string::npos) continue;
      std::string tag = piece.substr(at, length);
      std::string name = tag.substr(start_.size(), tag.size() - start_.size() - end_.size());
      const std::string* replacement = find(tags_, name);
      if (replacement == nullptr) continue;
      for (std::size_t pos = piece.find(tag); pos != std::string::npos; pos = piece.find(tag, pos + replacement->size()))
        piece.replace(pos, tag.size(), *replacement);
      if (!again && findTag(*replacement, "<", ">").first != std::string::npos) again = true;
    }
    re.clear();
    for (const std::string& piece : pieces) re += piece;
    ++passes;
  } while (again && passes < max_passes);
  return re == original ? std::string(pattern) : re;
}

}  // namespace mailgate::rules
