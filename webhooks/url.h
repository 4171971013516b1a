// Endpoint URLs (docs/webhooks.md, docs/config.md [[webhooks]] url). A pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cartwatch::webhooks {

// An http:// or https:// URL's parts.
struct Url {
  bool tls = false;
  std::string host{};    // without the brackets of an IPv6 literal
  std::string port{};    // "443" / "80" when the URL names none
  std::string target{};  // path and query; "/" when the URL has none
  std::string host_header{};  // host[:port] as the URL spells it
};
// nullopt when `url` is not an absolute http(s) URL with a host (and a port number, when
// one is given, from 1 to 65535), or has user info or a fragment.
std::optional<Url> ParseUrl(std::string_view url);

}  // namespace cartwatch::webhooks
