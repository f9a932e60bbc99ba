// ferryctl's client side of the ferryd control socket.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace ferry::ctl {

constexpr const char* kDefaultSocket = "/run/ferry/ferryd.sock";

struct ClientError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Connects to the agent's Unix stream socket, writes `request` plus '\n',
// reads the reply until EOF (bounded by timeout_ms) and parses it as JSON.
// Throws ClientError with a user-facing message on failure.
nlohmann::json request(const std::string& socket_path, const nlohmann::json& request, int timeout_ms = 10000);

}  // namespace ferry::ctl
