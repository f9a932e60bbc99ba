#include "k8s/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ferry::k8s {

namespace {

std::string trimRight(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

// base64 decoding for kubeconfig *-data fields (RFC 4648, padding optional).
std::optional<std::string> base64Decode(const std::string& in) {
  static const std::string tbl =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto p = tbl.find(c);
    if (p == std::string::npos) return std::nullopt;
    val = (val << 6) + static_cast<int>(p);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

const YAML::Node findNamed(const YAML::Node& list, const std::string& name) {
  if (list && list.IsSequence())
    for (const auto& it : list)
      if (it["name"] && it["name"].as<std::string>() == name) return it;
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string resolve(const std::string& dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return dir + "/" + p;
}

}  // namespace

Expected<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::sys("read " + path, errno ? errno : ENOENT);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TokenFile::TokenFile(std::string path, std::chrono::milliseconds recheck)
    : path_(std::move(path)), recheck_(recheck) {}

Expected<std::string> TokenFile::token() {
  std::lock_guard lk(mu_);
  auto now = std::chrono::steady_clock::now();
  if (mtimeNs_ >= 0 && now - checked_ < recheck_) return token_;
  checked_ = now;
  struct stat st{};
  if (stat(path_.c_str(), &st) != 0) {
    if (mtimeNs_ >= 0) return token_;  // keep the last token while the file is replaced
    return Status::sys("token file " + path_, errno);
  }
  long long m = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  if (m == mtimeNs_ && st.st_size == size_) return token_;
  auto data = readFile(path_);
  if (!data) return data.status();
  token_ = trimRight(*data);
  mtimeNs_ = m;
  size_ = st.st_size;
  if (token_.empty()) return Status::error("token file " + path_ + " is empty");
  return token_;
}

Expected<std::string> ClientConfig::bearer() const {
  if (tokenFile) return tokenFile->token();
  return token;
}

Expected<ClientConfig> loadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return Status::error("kubeconfig " + path + ": " + e.what());
  }
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  auto err = [&](const std::string& m) { return Status::error("kubeconfig " + path + ": " + m); };
  try {
    std::string ctxName = context;
    if (ctxName.empty()) {
      if (!root["current-context"] || root["current-context"].as<std::string>().empty())
        return err("no current-context and no --context given");
      ctxName = root["current-context"].as<std::string>();
    }
    auto ctx = findNamed(root["contexts"], ctxName);
    if (!ctx || !ctx["context"]) return err("context \"" + ctxName + "\" not found in contexts");
    auto c = ctx["context"];
    std::string clusterName = c["cluster"] ? c["cluster"].as<std::string>() : "";
    std::string userName = c["user"] ? c["user"].as<std::string>() : "";
    auto cl = findNamed(root["clusters"], clusterName);
    if (!cl || !cl["cluster"])
      return err("context \"" + ctxName + "\": cluster \"" + clusterName + "\" not found in clusters");
    auto cluster = cl["cluster"];

    ClientConfig cfg;
    cfg.origin = "kubeconfig " + path + " (context " + ctxName + ")";
    cfg.ns = c["namespace"] ? c["namespace"].as<std::string>() : "default";
    if (!cluster["server"]) return err("cluster \"" + clusterName + "\": server: missing");
    cfg.server = trimRight(cluster["server"].as<std::string>());
    while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
    if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0)
      return err("cluster \"" + clusterName + "\": server: \"" + cfg.server +
                 "\" is not an http(s) URL");
    if (cluster["certificate-authority-data"]) {
      auto d = base64Decode(cluster["certificate-authority-data"].as<std::string>());
      if (!d) return err("cluster \"" + clusterName + "\": certificate-authority-data: not base64");
      cfg.caPem = *d;
    } else if (cluster["certificate-authority"]) {
      auto f = readFile(resolve(dir, cluster["certificate-authority"].as<std::string>()));
      if (!f) return f.status().context(err("cluster \"" + clusterName + "\": certificate-authority").message());
      cfg.caPem = *f;
    }
    if (cluster["insecure-skip-tls-verify"]) cfg.insecureSkipVerify = cluster["insecure-skip-tls-verify"].as<bool>();

    if (userName.empty()) return cfg;  // anonymous
    auto us = findNamed(root["users"], userName);
    if (!us) return err("context \"" + ctxName + "\": user \"" + userName + "\" not found in users");
    auto u = us["user"];
    if (!u || u.IsNull()) return cfg;
    for (const char* m : {"exec", "auth-provider", "username", "password"}) {
      if (u[m])
        return err("user \"" + userName + "\": unsupported auth method \"" + m +
                   "\" (ferry supports client certificates and bearer tokens: token, tokenFile, "
                   "client-certificate(-data) with client-key(-data))");
    }
    auto pemField = [&](const char* data, const char* file, std::string* out) -> Status {
      if (u[data]) {
        auto d = base64Decode(u[data].as<std::string>());
        if (!d) return err("user \"" + userName + "\": " + data + ": not base64");
        *out = *d;
      } else if (u[file]) {
        auto f = readFile(resolve(dir, u[file].as<std::string>()));
        if (!f) return f.status().context(err("user \"" + userName + "\": " + file).message());
        *out = *f;
      }
      return Status::ok();
    };
    if (auto s = pemField("client-certificate-data", "client-certificate", &cfg.clientCertPem); !s) return s;
    if (auto s = pemField("client-key-data", "client-key", &cfg.clientKeyPem); !s) return s;
    if (cfg.clientCertPem.empty() != cfg.clientKeyPem.empty())
      return err("user \"" + userName + "\": a client certificate needs both the certificate and the key");
    if (u["token"]) cfg.token = u["token"].as<std::string>();
    else if (u["tokenFile"]) {
      cfg.tokenFile = std::make_shared<TokenFile>(resolve(dir, u["tokenFile"].as<std::string>()));
      if (auto t = cfg.tokenFile->token(); !t) return t.status().context(err("user \"" + userName + "\": tokenFile").message());
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return err(e.what());
  }
}

Expected<ClientConfig> inClusterConfig(const std::string& saDir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return Status::error("in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                         "must be set (not running in a pod? use --kubeconfig)");
  ClientConfig cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  cfg.server = "https://" + h + ":" + port;
  cfg.origin = "in-cluster (" + saDir + ")";
  cfg.tokenFile = std::make_shared<TokenFile>(saDir + "/token");
  if (auto t = cfg.tokenFile->token(); !t) return t.status().context("in-cluster configuration");
  auto ca = readFile(saDir + "/ca.crt");
  if (!ca) return ca.status().context("in-cluster configuration");
  cfg.caPem = *ca;
  if (auto ns = readFile(saDir + "/namespace")) cfg.ns = trimRight(*ns);
  else cfg.ns = "default";
  return cfg;
}

}  // namespace ferry::k8s
