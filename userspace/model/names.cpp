#include "model/names.h"

#include <cctype>

namespace ferry {

namespace {

bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Shared shape of DNS labels: [a-z0-9]([-a-z0-9]*[a-z0-9])?
std::string checkLabelShape(std::string_view s, bool mustStartAlpha) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 63) return "must be no more than 63 characters, got " + quoted(s);
  for (char c : s)
    if (!lowerAlnum(c) && c != '-')
      return "must consist of lower case alphanumeric characters or '-', got " + quoted(s);
  if (!lowerAlnum(s.front()) || !lowerAlnum(s.back()))
    return "must start and end with an alphanumeric character, got " + quoted(s);
  if (mustStartAlpha && !(s.front() >= 'a' && s.front() <= 'z'))
    return "must start with a lower case letter, got " + quoted(s);
  return "";
}

}  // namespace

std::string checkDns1123Label(std::string_view s) { return checkLabelShape(s, false); }

std::string checkDns1035Label(std::string_view s) { return checkLabelShape(s, true); }

std::string checkDns1123Subdomain(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 253) return "must be no more than 253 characters";
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (!checkLabelShape(label, false).empty())
      return "must be a lowercase RFC 1123 subdomain, got " + quoted(s);
    if (dot == std::string_view::npos) return "";
    start = dot + 1;
  }
}

std::string checkIanaSvcName(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 15) return "must be no more than 15 characters, got " + quoted(s);
  bool letter = false;
  for (char c : s) {
    if (!lowerAlnum(c) && c != '-')
      return "must contain only lower case alphanumeric characters or '-', got " + quoted(s);
    letter |= (c >= 'a' && c <= 'z');
  }
  if (s.front() == '-' || s.back() == '-' || s.find("--") != std::string_view::npos)
    return "must not begin or end with '-' or contain '--', got " + quoted(s);
  if (!letter) return "must contain at least one letter, got " + quoted(s);
  return "";
}

}  // namespace ferry
