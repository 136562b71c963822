// UTF-8 validity, for text that must survive JSON unchanged (keys named in listings,
// names sent in /join). Light on purpose: flags.cc and kvctl include it.
#pragma once

#include <string_view>

namespace kv {

// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points above
// U+10FFFF), i.e. exactly the strings nlohmann::json dumps without an error (its strict
// handler throws type_error 316) and JsonString passes through unchanged.
bool ValidUtf8(std::string_view s);

}  // namespace kv
