// JsonWriter: appends JSON to a string, for the documents Cartwatch renders (the query
// API's records, the rule engine's actions). Money is written as an exact decimal ("19.9",
// never "1.99E1"), which is why this is not Boost.JSON's serializer; times as ISO 8601.
//
// Thread safety: one writer per string; no shared state.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "profiles/event.h"
#include "util/time.h"

namespace cartwatch::profiles {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() {
    Separate();
    out_.push_back('{');
    first_ = true;
  }
  void EndObject() {
    out_.push_back('}');
    first_ = false;
  }
  void BeginArray() {
    Separate();
    out_.push_back('[');
    first_ = true;
  }
  void EndArray() {
    out_.push_back(']');
    first_ = false;
  }
  void Key(std::string_view key) {
    Separate();
    Quoted(key);
    out_.push_back(':');
    after_key_ = true;
  }
  void Null() {
    Separate();
    out_.append("null");
  }
  void String(std::string_view s) {
    Separate();
    Quoted(s);
  }
  // An empty string is null: the field is not known.
  void Text(std::string_view s) {
    if (s.empty()) {
      Null();
    } else {
      String(s);
    }
  }
  void Int(std::int64_t v) {
    Separate();
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, end);
  }
  void Money(Amount a) {
    Separate();
    std::uint64_t abs = a < 0 ? 0 - static_cast<std::uint64_t>(a) : static_cast<std::uint64_t>(a);
    if (a < 0) out_.push_back('-');
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, abs / kAmountScale);
    out_.append(buf, end);
    std::uint64_t fraction = abs % kAmountScale;
    if (fraction == 0) return;
    char digits[4];
    for (int i = 3; i >= 0; --i) {
      digits[i] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    int n = 4;
    while (digits[n - 1] == '0') --n;
    out_.push_back('.');
    out_.append(digits, static_cast<std::size_t>(n));
  }
  // Rounded to `decimals`, trailing zeros dropped.
  void Number(double v, int decimals) {
    Separate();
    if (!std::isfinite(v)) {
      out_.append("null");
      return;
    }
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
    if (ec != std::errc()) {
      out_.append("null");
      return;
    }
    std::string_view s(buf, static_cast<std::size_t>(end - buf));
    if (s.find('.') != std::string_view::npos) {
      while (s.back() == '0') s.remove_suffix(1);
      if (s.back() == '.') s.remove_suffix(1);
    }
    if (s == "-0") s = "0";
    out_.append(s);
  }
  // ISO-8601; 0 (never) is null.
  // `json`, a complete JSON value written elsewhere, as the next value.
  void Raw(std::string_view json) {
    Separate();
    out_.append(json);
  }
  void Bool(bool b) {
    Separate();
    out_.append(b ? "true" : "false");
  }
  void Time(EpochMs ms) {
    if (ms == 0) {
      Null();
      return;
    }
    Separate();
    out_.push_back('"');
    util::AppendIso8601(ms, out_);
    out_.push_back('"');
  }

 private:
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  void Quoted(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_.push_back('"');
    std::size_t run = 0;  // start of the characters not yet appended
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + run, i - run);
      run = i + 1;
      out_.push_back('\\');
      switch (c) {
        case '"':
        case '\\':
          out_.push_back(static_cast<char>(c));
          break;
        case '\n':
          out_.push_back('n');
          break;
        case '\r':
          out_.push_back('r');
          break;
        case '\t':
          out_.push_back('t');
          break;
        default:
          out_.append("u00");
          out_.push_back(kHex[c >> 4]);
          out_.push_back(kHex[c & 0xF]);
      }
    }
    out_.append(s.data() + run, s.size() - run);
    out_.push_back('"');
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace cartwatch::profiles
