#pragma once
// The one place libmicrohttpd is included (design.md §5 habit 2). MHD_Daemon is stopped with
// MHD_stop_daemon, a response freed with MHD_destroy_response.

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdarg>
#include <cstdint>

#include <microhttpd.h>

#include <memory>

#include "gateway/util/c_free.h"

namespace mailgate {

using MhdDaemon = std::unique_ptr<MHD_Daemon, CFree<&MHD_stop_daemon>>;
using MhdResponse = std::unique_ptr<MHD_Response, CFree<&MHD_destroy_response>>;

}  // namespace mailgate
