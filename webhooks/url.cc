#include "webhooks/url.h"

#include <charconv>

#include "util/ascii.h"

namespace cartwatch::webhooks {

std::optional<Url> ParseUrl(std::string_view url) {
  Url out;
  std::string_view rest;
  if (url.size() > 8 && util::IEquals(url.substr(0, 8), "https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.size() > 7 && util::IEquals(url.substr(0, 7), "http://")) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
  }
  if (rest.find('#') != std::string_view::npos) return std::nullopt;
  const auto path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  out.target = path_at == std::string_view::npos ? "/" : std::string(rest.substr(path_at));
  if (out.target.front() == '?') out.target.insert(out.target.begin(), '/');
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  out.host_header = std::string(authority);
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    out.port = std::string(port);
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.host = std::string(host);
  return out;
}

}  // namespace cartwatch::webhooks
