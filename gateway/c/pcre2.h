#pragma once
// The one place PCRE2 is included (design.md §5 habit 2), with its handles wrapped once. Rules
// match bytes (UTF-8 octets, as SpamAssassin 4 matches them), so only the 8-bit library is used.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate::rules {

using Pcre2Code = std::unique_ptr<pcre2_code, CFree<&pcre2_code_free>>;
using Pcre2CompileContext = std::unique_ptr<pcre2_compile_context, CFree<&pcre2_compile_context_free>>;
using Pcre2MatchData = std::unique_ptr<pcre2_match_data, CFree<&pcre2_match_data_free>>;
using Pcre2MatchContext = std::unique_ptr<pcre2_match_context, CFree<&pcre2_match_context_free>>;
using Pcre2JitStack = std::unique_ptr<pcre2_jit_stack, CFree<&pcre2_jit_stack_free>>;

}  // namespace mailgate::rules
