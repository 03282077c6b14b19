#pragma once
// `mailgate log [FILES...]`: reads decision logs back for people (README "Reviewing decisions:
// mailgate log"). It reads JSON only: nothing of the server (net, pipeline, filters) is linked
// into what it runs.

#include <string>
#include <vector>

namespace mailgate::logtool {

// The arguments after "log". 0: the logs were read (malformed lines are reported on standard
// error and skipped, not an error); 1: a file could not be read or the configuration named by
// --config could not be used; 2: a usage error.
int runLogCommand(const std::vector<std::string>& arguments);

}  // namespace mailgate::logtool
