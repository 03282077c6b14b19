#pragma once
// What libspf2 is given to compile: never the published text, always a record written back from
// our validated parse (spf_record.h), in a spelling libspf2 evaluates the RFC 7208 way.
//
// CVE-2023-42118 (ZDI-23-1472; fixed upstream in libspf2 commit d14abff, not in Debian's
// 1.2.10-7.2): SPF_c_parse_macro (spf_compile.c) starts each string literal with
//   ds_avail = _avail - sizeof(SPF_data_t)          // SPF_INIT_STRING_LITERAL
// where _avail = SPF_MAX_MECH_LEN (511) minus the bytes already compiled for the term. Once a
// term's compiled data reaches 508 bytes (e.g. 127 "%{d}" in a row) _avail is 3, ds_avail
// underflows to SIZE_MAX, SPF_ENSURE_STRING_AVAIL never fires again, and the literal that
// follows is memcpy'd past the 4096-byte stack buffer of SPF_c_mech_add / SPF_c_mod_add (or the
// 515-byte one of SPF_record_compile_macro). The path is unreachable from mailgate because:
//  1. libspf2 compiles only text this file writes, from records our validator accepted, and
//     every term's compiled size is computed here exactly (libspf2CompiledSize) and refused
//     above kMaxCompiledTermBytes = 256, half of where the underflow starts;
//  2. exp= and unknown modifiers are never given to libspf2 (nothing of ours reaches
//     SPF_c_mod_add), and explanations are fetched and expanded by our own code, so DNS text
//     never reaches SPF_record_compile_macro; the server's default explanation is a constant;
//  3. the values macros expand to are bounded before libspf2 sees them (spf_check.cpp: local
//     part ≤ 64 octets, domains ≤ 253, HELO ≤ 253 printable ASCII), which also keeps the
//     expansion code (CVE-2021-20314/33912/33913, fixed in Debian) away from large inputs.

#include <optional>
#include <string>
#include <string_view>

#include "filters/spf/spf_record.h"

namespace mailgate {

constexpr size_t kMaxCompiledTermBytes = 256;   // see above; libspf2 underflows at 508
constexpr size_t kLibspf2MaxMechBytes = 511;    // SPF_MAX_MECH_LEN: all mechanisms of a record

// libspf2 stores a CIDR length of 0 as "absent" (SPF_i_mech_cidr: `if (cidr == 0) cidr = 32`)
// and refuses "/0" when compiling, so "a/0", "mx//0" cannot be said to it. Such a term's domain
// gets this suffix; the DNS layer strips it, looks the real name up, and answers with the
// client's own address when any address exists — which is what a /0 match means (§5.3, §5.4).
// The \x01 byte cannot come from any macro value (senders, HELO, PTR names and records are
// checked for control characters first), so no input can forge the suffix.
inline constexpr std::string_view kZeroCidrMarker = ".\x01zero-cidr";

struct Libspf2Record {
  std::optional<std::string> text;  // for SPF_record_compile
  std::string error;                // why not (a permerror reason)
  size_t compiled_bytes = 0;        // what libspf2 will store as the record's mech_len
};

// The record for a client of `family` (AF_INET / AF_INET6). With `mechanisms` set, only that
// many leading mechanisms and no redirect (used to find which mechanism matched).
Libspf2Record recordForLibspf2(const SpfRecord& record, int family,
                               std::optional<size_t> mechanisms = std::nullopt);

}  // namespace mailgate
