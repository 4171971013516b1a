// E-mail templates (rules/email.h): the language chosen, values HTML-escaped, links that
// are not web links left out, and the shipped templates render the shipped data.
#include "rules/email.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace cartwatch::rules {
namespace {

EmailTemplates Templates() {
  std::string error;
  auto t = EmailTemplates::FromTexts(
      {{"cart",
        {{"en", {"Your cart, {{customer.first_name}}", "<p>Hi {{customer.first_name}}</p>"
                                                        "{{#cart.lines}}<a href=\"{{url}}\">{{name}}</a>{{/cart.lines}}"}},
         {"ru", {"Ваша корзина", "<p>Здравствуйте, {{customer.first_name}}</p>"}}}}},
      &error);
  EXPECT_TRUE(t) << error;
  return t ? std::move(*t) : EmailTemplates();
}

constexpr const char* kData = R"json({"customer":{"first_name":"<b>Ann</b> & \"co\""},
  "cart":{"lines":[{"name":"Boots <3","url":"https://shop.example/boots"},
                   {"name":"Hat","url":"javascript:alert(1)"}]}})json";

TEST(EmailTest, ChoosesTheLanguageOfTheLocaleThenTheFallbackThenEnglish) {
  const EmailTemplates t = Templates();
  EXPECT_EQ(t.Render("cart", "ru-RU", "en", kData)->language, "ru");
  EXPECT_EQ(t.Render("cart", "de-DE", "ru", kData)->language, "ru");
  EXPECT_EQ(t.Render("cart", "de-DE", "fr", kData)->language, "en");
  EXPECT_EQ(t.Render("cart", "", "", kData)->language, "en");
  EXPECT_FALSE(t.Render("nope", "en", "en", kData));
  EXPECT_FALSE(t.Render("cart", "en", "en", "[1]"));
  EXPECT_EQ(t.Languages("cart"), (std::vector<std::string>{"en", "ru"}));
}

TEST(EmailTest, EscapesValuesAndDropsLinksThatAreNotWebLinks) {
  const auto email = Templates().Render("cart", "en", "en", kData);
  ASSERT_TRUE(email);
  EXPECT_EQ(email->html,
            "<p>Hi &lt;b&gt;Ann&lt;/b&gt; &amp; &quot;co&quot;</p>"
            "<a href=\"https://shop.example/boots\">Boots &lt;3</a><a href=\"\">Hat</a>");
  // The subject is text: not escaped.
  EXPECT_EQ(email->subject, "Your cart, <b>Ann</b> & \"co\"");
}

TEST(EmailTest, ASyntaxErrorNamesTheTemplate) {
  std::string error;
  EXPECT_FALSE(EmailTemplates::FromTexts({{"bad", {{"en", {"ok", "{{#open}} never closed"}}}}}, &error));
  EXPECT_NE(error.find("bad.en.html"), std::string::npos) << error;
}

TEST(EmailTest, LoadsADirectoryAndRefusesHalfATemplate) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cartwatch-templates-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cart.en.subject") << "Subject {{site}}\n";
  std::ofstream(dir / "cart.en.html") << "<p>{{site}}</p>";
  std::ofstream(dir / "README.md") << "not a template";
  std::string error;
  auto loaded = EmailTemplates::Load(dir.string(), &error);
  ASSERT_TRUE(loaded) << error;
  const auto email = loaded->Render("cart", "en", "en", R"({"site":"shop"})");
  ASSERT_TRUE(email);
  EXPECT_EQ(email->subject, "Subject shop");
  std::ofstream(dir / "lonely.ru.subject") << "no html";
  EXPECT_FALSE(EmailTemplates::Load(dir.string(), &error));
  EXPECT_NE(error.find("lonely.ru.html: missing"), std::string::npos) << error;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cartwatch::rules
