#pragma once
// The one place libarchive is included (design.md §5 habit 2).

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate {

using ArchiveReader = std::unique_ptr<archive, CFree<&archive_read_free>>;

}  // namespace mailgate
