// Where the apiserver is and how to authenticate to it: from a kubeconfig
// file (current context or a named one) or from the in-cluster service
// account (KUBERNETES_SERVICE_HOST/PORT and
// /var/run/secrets/kubernetes.io/serviceaccount), as client-go's
// clientcmd and rest.InClusterConfig do.
// Supported: bearer tokens (inline or a file, re-read when it changes: the
// kubelet rotates projected service-account tokens) and client certificates.
// exec plugins, auth-providers and basic auth are rejected with an
// "unsupported auth method" error naming the file and user.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"

namespace ferry::k8s {

// A bearer token read from a file, re-read when the file's mtime or size
// changes (checked at most every `recheck`). Thread-safe.
class TokenFile {
 public:
  explicit TokenFile(std::string path,
                     std::chrono::milliseconds recheck = std::chrono::milliseconds(1000));
  // The current token (trailing whitespace trimmed), or an error naming the file.
  Expected<std::string> token();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds recheck_;
  std::mutex mu_;
  std::string token_;
  long long mtimeNs_ = -1;
  long long size_ = -1;
  std::chrono::steady_clock::time_point checked_{};
};

struct ClientConfig {
  std::string server;          // https://host:port (no trailing slash)
  std::string caPem;           // trusted CA bundle (PEM); empty: the system store
  bool insecureSkipVerify = false;
  std::string clientCertPem;   // client certificate auth (both or neither)
  std::string clientKeyPem;
  std::string token;           // a static bearer token
  std::shared_ptr<TokenFile> tokenFile;  // or one read from a file
  std::string ns;              // the context's namespace (in-cluster: the pod's)
  std::string origin;          // for messages: "kubeconfig /x (context c)" or "in-cluster"
  std::string userAgent = "ferryd";

  // The bearer token to send now (empty when none).
  Expected<std::string> bearer() const;
};

// Parses a kubeconfig (yaml-cpp). `context` empty: current-context.
// Relative file paths are relative to the kubeconfig's directory.
// Errors name the file, the context/cluster/user and the field.
Expected<ClientConfig> loadKubeconfig(const std::string& path, const std::string& context = "");

// In-cluster configuration. `saDir` is the service-account directory
// (token, ca.crt, namespace); the host and port come from the environment.
Expected<ClientConfig> inClusterConfig(
    const std::string& saDir = "/var/run/secrets/kubernetes.io/serviceaccount");

// Reads a whole file; the error names it.
Expected<std::string> readFile(const std::string& path);

}  // namespace ferry::k8s
