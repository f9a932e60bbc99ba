// Kubernetes name syntax checks (apimachinery validation), used so that a
// typo is reported where it was written instead of surfacing later as a
// broken DNS name or map key.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

// "" when valid, else a message like `must be no more than 63 characters`.
std::string checkDns1123Label(std::string_view s);      // namespaces, port names
std::string checkDns1123Subdomain(std::string_view s);  // most object names
std::string checkDns1035Label(std::string_view s);      // Service names
std::string checkIanaSvcName(std::string_view s);       // named ports (targetPort)

}  // namespace ferry
