#pragma once
// The Author Domain(s) of RFC 7489 §3.2: the domains of the mailboxes in the message's From:
// field. §6.6.1: a message with no From: field or with several cannot be evaluated; one field
// with several mailboxes is checked once per domain.

#include <string>
#include <string_view>
#include <vector>

namespace mailgate {

struct AuthorDomains {
  enum class Problem { None, NoFromField, SeveralFromFields, NoDomain };
  Problem problem = Problem::None;
  std::vector<std::string> domains;  // lower case, each once, in the order they appear
};

// `header_section`: the message up to (not necessarily including) the empty line.
AuthorDomains authorDomains(std::string_view header_section);
// The same from the unfolded values of the From: fields (as DkimVerifier collects them).
AuthorDomains authorDomains(const std::vector<std::string>& from_fields);

const char* authorProblemText(AuthorDomains::Problem problem);

}  // namespace mailgate
