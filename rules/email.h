// E-mail templates (docs/rules.md, "E-mails"): `<name>.<language>.subject` (one line) and
// `<name>.<language>.html` in the templates directory, Mustache (Debian's header-only
// kainjow-mustache), rendered with an action's data (rules/payload.h). In the HTML every
// {{value}} is HTML-escaped ({{{value}}} is not, and no shipped template uses it), and a
// `*url` value that is not http(s) is left out, so an event can inject neither markup nor a
// javascript: link. The subject is plain text: nothing is escaped, line breaks become
// spaces.
//
// Loaded once at start-up; then immutable: Render may be called from any thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cartwatch::rules {

class EmailTemplates {
 public:
  // Every template of `dir`. nullopt with *error naming the file and what is wrong (it
  // cannot be read, a Mustache syntax error, a subject without its HTML or the reverse).
  // Files named otherwise are ignored; a missing directory holds no template.
  static std::optional<EmailTemplates> Load(const std::string& dir, std::string* error);
  // From texts (tests): name -> language -> {subject, html}.
  struct Text {
    std::string subject, html;
  };
  static std::optional<EmailTemplates> FromTexts(
      const std::map<std::string, std::map<std::string, Text>>& texts, std::string* error);

  // The languages `name` is written in, sorted; empty when there is no such template.
  std::vector<std::string> Languages(std::string_view name) const;

  struct Email {
    std::string language;  // the one rendered
    std::string subject, html;
  };
  // `name` rendered with `data_json` (a JSON object) in the language of `locale` ("ru-RU"
  // is "ru"), else of `fallback`, else "en", else the first there is. nullopt when there is
  // no template named `name`, or `data_json` is not a JSON object.
  std::optional<Email> Render(std::string_view name, std::string_view locale,
                              std::string_view fallback, std::string_view data_json) const;

 private:
  struct Compiled;
  std::map<std::string, std::map<std::string, std::shared_ptr<const Compiled>>, std::less<>> templates_;
};

// "ru-RU", "ru_RU" -> "ru"; lower case.
std::string LanguageOf(std::string_view locale);

}  // namespace cartwatch::rules
