#pragma once
// `mailgate check [--from A] [--rcpt B]... [--ip C] [--helo D] [--config F] [--json] message.eml`:
// runs the configured pipeline offline on one message, phase by phase as a session would (DNS
// stages through the configured resolver), and prints the verdict, the reply the client would get,
// the score, each rule hit, the headers that would be added and every stage's outcome.

#include <optional>
#include <string>
#include <vector>

#include "gateway/config/config.h"

namespace mailgate {

struct CheckRequest {
  std::string message_path;
  std::string sender;                   // "" : the null sender
  std::vector<std::string> recipients;  // none: <postmaster> (RFC 5321 §4.5.1: always accepted)
  std::string client_ip = "127.0.0.1";
  std::string helo = "localhost";
  bool json = false;
  bool record = false;  // print the decision record a session would log, instead
};

// Parses the command's arguments (after "check"); nullopt with `error` set on a bad one.
std::optional<CheckRequest> parseCheckArguments(const std::vector<std::string>& arguments,
                                                std::optional<std::string>& config_path, std::string& error);

// Prints the result on stdout. 0: the check ran (whatever the verdict); 1: the configuration or
// the message could not be used.
int runCheckCommand(const Config& config, const CheckRequest& request);

}  // namespace mailgate
