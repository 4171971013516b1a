#include "rules/email.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

namespace cartwatch::rules {

namespace mustache = kainjow::mustache;

struct EmailTemplates::Compiled {
  mustache::mustache subject;
  mustache::mustache html;
  Compiled(const std::string& s, const std::string& h) : subject(s), html(h) {}
};

namespace {

bool SafeUrl(std::string_view url) {
  auto starts = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(url[i])) != prefix[i]) return false;
    }
    return true;
  };
  return starts("https://") || starts("http://");
}

mustache::data ToData(const boost::json::value& v, std::string_view key) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      mustache::data out{mustache::data::type::object};
      for (const auto& [k, value] : v.as_object()) out.set(std::string(k), ToData(value, k));
      return out;
    }
    case boost::json::kind::array: {
      mustache::data out{mustache::data::type::list};
      for (const auto& item : v.as_array()) out.push_back(ToData(item, key));
      return out;
    }
    case boost::json::kind::string: {
      const std::string s(v.as_string());
      // A link from an event that is not a web link is left out.
      const bool url = key.size() >= 3 && key.substr(key.size() - 3) == "url";
      if (url && !SafeUrl(s)) return mustache::data(false);
      return mustache::data(s);
    }
    case boost::json::kind::bool_:
      return mustache::data(v.as_bool());
    case boost::json::kind::null:
      return mustache::data(false);
    default:
      return mustache::data(boost::json::serialize(v));
  }
}

std::optional<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::string LanguageOf(std::string_view locale) {
  std::string out;
  for (char c : locale) {
    if (c == '-' || c == '_') break;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::optional<EmailTemplates> EmailTemplates::FromTexts(
    const std::map<std::string, std::map<std::string, Text>>& texts, std::string* error) {
  EmailTemplates out;
  for (const auto& [name, languages] : texts) {
    for (const auto& [language, text] : languages) {
      auto compiled = std::make_shared<Compiled>(text.subject, text.html);
      const std::string where = name + "." + language;
      if (!compiled->subject.is_valid()) {
        *error = where + ".subject: " + compiled->subject.error_message();
        return std::nullopt;
      }
      if (!compiled->html.is_valid()) {
        *error = where + ".html: " + compiled->html.error_message();
        return std::nullopt;
      }
      // The subject is plain text: nothing to escape.
      compiled->subject.set_custom_escape([](const std::string& s) { return s; });
      out.templates_[name][language] = std::move(compiled);
    }
  }
  return out;
}

std::optional<EmailTemplates> EmailTemplates::Load(const std::string& dir, std::string* error) {
  namespace fs = std::filesystem;
  std::map<std::string, std::map<std::string, Text>> texts;
  std::map<std::string, std::map<std::string, int>> parts;  // 1 subject, 2 html
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return EmailTemplates();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string file = entry.path().filename().string();
    // <name>.<language>.<subject|html>
    const auto last = file.rfind('.');
    if (last == std::string::npos) continue;
    const std::string kind = file.substr(last + 1);
    if (kind != "subject" && kind != "html") continue;
    const auto middle = file.rfind('.', last - 1);
    if (middle == std::string::npos || middle == 0) continue;
    const std::string name = file.substr(0, middle);
    const std::string language = file.substr(middle + 1, last - middle - 1);
    if (language.empty()) continue;
    auto text = ReadFile(entry.path());
    if (!text) {
      *error = entry.path().string() + ": cannot be read";
      return std::nullopt;
    }
    Text& t = texts[name][language];
    if (kind == "subject") {
      t.subject = std::move(*text);
      while (!t.subject.empty() && (t.subject.back() == '\n' || t.subject.back() == '\r')) {
        t.subject.pop_back();
      }
      parts[name][language] |= 1;
    } else {
      t.html = std::move(*text);
      parts[name][language] |= 2;
    }
  }
  if (ec) {
    *error = dir + ": " + ec.message();
    return std::nullopt;
  }
  for (const auto& [name, languages] : parts) {
    for (const auto& [language, have] : languages) {
      if (have != 3) {
        *error = (fs::path(dir) / (name + "." + language + (have == 1 ? ".html" : ".subject"))).string() +
                 ": missing (each template is a .subject and an .html)";
        return std::nullopt;
      }
    }
  }
  std::string compile_error;
  auto out = FromTexts(texts, &compile_error);
  if (!out) *error = (fs::path(dir) / compile_error).string();
  return out;
}

std::vector<std::string> EmailTemplates::Languages(std::string_view name) const {
  std::vector<std::string> out;
  auto it = templates_.find(name);
  if (it == templates_.end()) return out;
  for (const auto& [language, compiled] : it->second) out.push_back(language);
  return out;
}

std::optional<EmailTemplates::Email> EmailTemplates::Render(std::string_view name,
                                                            std::string_view locale,
                                                            std::string_view fallback,
                                                            std::string_view data_json) const {
  auto it = templates_.find(name);
  if (it == templates_.end() || it->second.empty()) return std::nullopt;
  const auto& languages = it->second;
  const std::shared_ptr<const Compiled>* chosen = nullptr;
  std::string language;
  for (const std::string& want : {LanguageOf(locale), LanguageOf(fallback), std::string("en")}) {
    if (want.empty()) continue;
    if (auto found = languages.find(want); found != languages.end()) {
      chosen = &found->second;
      language = want;
      break;
    }
  }
  if (chosen == nullptr) {
    chosen = &languages.begin()->second;
    language = languages.begin()->first;
  }
  boost::system::error_code ec;
  const boost::json::value data = boost::json::parse(data_json, ec);
  if (ec || !data.is_object()) return std::nullopt;
  const mustache::data view = ToData(data, "");
  // Mustache renders through a const-less interface: each render uses its own copy.
  Compiled copy = **chosen;
  Email email;
  email.language = language;
  email.subject = copy.subject.render(view);
  std::replace(email.subject.begin(), email.subject.end(), '\n', ' ');
  std::replace(email.subject.begin(), email.subject.end(), '\r', ' ');
  email.html = copy.html.render(view);
  return email;
}

}  // namespace cartwatch::rules
