#pragma once
// hiredis (Debian libhiredis-dev), included only through this shim (design.md §5, habit 2): its
// protocol half only (command formatting, reply parsing), so that the bytes travel over the
// session's own loop (gateway/pipeline/network.h) and no stage sees a socket or a loop.

#include <hiredis/hiredis.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate {

using RedisReader = std::unique_ptr<redisReader, CFree<&redisReaderFree>>;

}  // namespace mailgate
