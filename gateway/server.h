#pragma once
// The running gateway: its workers, the shared state, and the signals that reload it and reopen
// the decision log (SIGHUP), reopen the log (SIGUSR1) and stop it (SIGTERM, SIGINT, SIGXCPU);
// the others that would end it uncleanly are ignored (README "Running it for real").

#include <optional>
#include <string>

#include "gateway/config/config.h"

namespace mailgate {

// Runs until stopped; returns the process exit code. `config_path` is empty for the embedded
// default (a reload then has nothing to read).
int runServer(Config config, std::optional<std::string> config_path);

}  // namespace mailgate
