#pragma once
// `mailgate check [--from A] [--rcpt B]... [--ip C] [--helo D] [--config F] [--json] message.eml`:
// runs the configured pipeline offline on one message, phase by phase as a session would (DNS
// stages through the configured resolver), and prints the verdict, the reply the client would get,
// the score, each rule hit, the headers that would be added and every stage's outcome.

#include <optional>
#include <string>
#include <vector>

#include "gateway/config/config.h"
#include "gateway/smtp/address.h"

namespace mailgate {

struct CheckRequest {
  // The client a message is checked for when no --ip names one (the output says when it was).
  static constexpr const char* default_client_ip = "127.0.0.1";

  std::string message_path;           // "-": standard input
  Path sender{true, {}};              // no --from: the null sender
  std::vector<Path> recipients;       // no --rcpt: <postmaster> (RFC 5321 §4.5.1: always accepted)
  std::string client_ip = default_client_ip;  // canonical, as a connected client's address
  bool client_ip_given = false;
  std::string helo = "localhost";
  bool json = false;
};

// Parses the command's arguments (after "check"); nullopt with `error` set on a bad one. Each
// value is checked as a session would check it: --ip an IPv4 or IPv6 address, --helo what HELO
// takes, --from and --rcpt what MAIL FROM and RCPT TO take.
std::optional<CheckRequest> parseCheckArguments(const std::vector<std::string>& arguments,
                                                std::optional<std::string>& config_path, std::string& error);

// Prints the result on stdout. 0: the check ran (whatever the verdict); 1: the configuration or
// the message could not be used.
int runCheckCommand(const Config& config, const CheckRequest& request);

}  // namespace mailgate
