#pragma once
// `mailgate rules lint PATH...`: loads rule files and folders as the rules stage would and reports,
// one line each with file:line, the errors (the set would not load), the lines skipped as
// unsupported (eval: tests, plugin settings...) and the rules that can never match.

#include <string>
#include <vector>

namespace mailgate::rules {

// Prints the report on stdout. 0: the set loads (skipped lines and never-matching rules are
// warnings); 1: it has errors.
int runLintCommand(const std::vector<std::string>& paths);

}  // namespace mailgate::rules
