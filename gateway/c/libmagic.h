#pragma once
// The one place libmagic is included (design.md §5 habit 2). A cookie is not safe to share
// between threads (libmagic(3)): each thread keeps its own.

#include <magic.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate {

using MagicCookie = std::unique_ptr<magic_set, CFree<&magic_close>>;

}  // namespace mailgate
