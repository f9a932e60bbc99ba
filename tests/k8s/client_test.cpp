// userspace/k8s (kubeconfig, Client, Reflector) against the test API server
// (tests/k8s/apiserver.py). The suite creates a network namespace of its own
// (per-run prefix) with the server on https://198.18.0.2:6443, and moves this
// process into it (setns before any thread exists, so every thread and
// socket lives there); nothing touches the root namespace's network. Each
// test starts the server afresh (empty store) and stops it.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/event_queue.h"
#include "k8s/reflector.h"
#include "k8s/source_set.h"

using namespace ferry::k8s;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string gSrc = FERRY_SOURCE_DIR;
std::string gDir;     // the testenv directory (PKI, kubeconfigs, server log)
std::string gNetns;   // <prefix>-kc
int gOrigNetns = -1;

int sh(const std::string& cmd) {
  int rc = std::system(("timeout -k 2 60 bash -c '" + cmd + "'").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string shOut(const std::string& cmd) {
  std::string out;
  FILE* f = popen(("timeout -k 2 30 bash -c '" + cmd + "'").c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void writeFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::trunc);
  f << data;
}

std::string testenv() { return gSrc + "/tests/k8s/testenv.sh"; }

void teardownEnv() {
  if (gDir.empty()) return;
  if (gOrigNetns >= 0) {
    setns(gOrigNetns, CLONE_NEWNET);
    close(gOrigNetns);
    gOrigNetns = -1;
  }
  sh(testenv() + " down " + gDir + " " + gNetns + " >/dev/null 2>&1");
  gDir.clear();
}

void onFatalSignal(int sig) {
  teardownEnv();  // not async-signal-safe, but the process is going anyway
  signal(sig, SIG_DFL);
  raise(sig);
}

class Env : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "needs root (network namespaces)";
    std::string prefix = shOut(gSrc + "/scripts/cluster.sh new-prefix");
    ASSERT_FALSE(prefix.empty());
    gNetns = prefix + "-kc";
    gDir = "/tmp/ferry-" + prefix + "-kc";
    std::atexit(teardownEnv);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV}) signal(sig, onFatalSignal);
    // Bring the netns and PKI up with a first server, then stop it: each test
    // starts its own.
    ASSERT_EQ(sh(testenv() + " up " + gDir + " " + gNetns + " >/dev/null"), 0) << "testenv up failed";
    ASSERT_EQ(sh(testenv() + " stop " + gDir), 0);
    gOrigNetns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(("/run/netns/" + gNetns).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0) << "setns";
    close(fd);
  }
  void TearDown() override { teardownEnv(); }
};

const auto* kEnv = ::testing::AddGlobalTestEnvironment(new Env);

const std::string kApi = "https://198.18.0.2:6443";

// Collects what a queue delivers (polling its eventfd, as the agent would).
struct Collector {
  EventQueue& q;
  std::vector<ObjectEvent> events;
  bool synced = false;

  // Polls until pred() holds or the timeout passes.
  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 8000ms) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{q.fd(), POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100))) > 0 || true) {
        auto b = q.drain();
        for (auto& e : b.events) events.push_back(std::move(e));
        synced = b.synced;
      }
    }
    return true;
  }
  size_t count(ObjectEvent::Type t, const std::string& name) const {
    size_t n = 0;
    for (const auto& e : events) n += (e.type == t && e.name == name);
    return n;
  }
};

class K8sClient : public ::testing::Test {
 protected:
  void SetUp() override { startServer(""); }
  void TearDown() override {
    for (auto& r : reflectors_) r->stop();
    sh(testenv() + " stop " + gDir);
  }

  void startServer(const std::string& extra) {
    sh(testenv() + " stop " + gDir);
    std::remove((gDir + "/state.json").c_str());
    ASSERT_EQ(sh(testenv() + " start " + gDir + " " + gNetns +
                 " --bookmark-interval 0.3 --history 200 " + extra + " >/dev/null"), 0);
  }

  // A fault or admin request (plain curl, as a test harness would).
  std::string fault(const std::string& op, const std::string& method = "POST") {
    return shOut("curl -sS --max-time 10 --cacert " + gDir + "/ca.crt -X " + method + " \"" + kApi +
                 "/_test/" + op + "\"");
  }

  std::shared_ptr<Client> client(const std::string& kubeconfig = "kubeconfig") {
    auto cfg = loadKubeconfig(gDir + "/" + kubeconfig);
    EXPECT_TRUE(cfg) << cfg.status().message();
    return std::make_shared<Client>(*cfg);
  }

  json mkService(const std::string& ns, const std::string& name, int port = 80) {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec", {{"ports", json::array({{{"port", port}}})}}}};
  }

  void create(Client& c, const json& svc) {
    auto r = c.call("POST", resources::Services.collectionPath(svc["metadata"]["namespace"]), &svc);
    ASSERT_TRUE(r) << r.status().message();
  }

  Reflector& reflector(std::shared_ptr<Client> c, const Resource& res, EventQueue& q,
                       ReflectorOptions o = {}) {
    if (!o.log) o.log = [this](const std::string& m) {
      std::lock_guard lk(logMu_);
      logs_.push_back(m);
    };
    o.backoffInitial = 100ms;
    o.backoffMax = 1000ms;
    reflectors_.push_back(std::make_unique<Reflector>(std::move(c), res, q, o));
    reflectors_.back()->start();
    return *reflectors_.back();
  }

  json requests() {
    try {
      return json::parse(fault("requests", "GET"));
    } catch (...) {
      return json::array();
    }
  }

  std::vector<std::unique_ptr<Reflector>> reflectors_;
  std::mutex logMu_;
  std::vector<std::string> logs_;
};

// ---------------------------------------------------------------- config

TEST_F(K8sClient, KubeconfigTokenAndCertificate) {
  auto tok = loadKubeconfig(gDir + "/kubeconfig");
  ASSERT_TRUE(tok) << tok.status().message();
  EXPECT_EQ(tok->server, kApi);
  EXPECT_EQ(tok->token, "test-token");
  EXPECT_EQ(tok->ns, "default");
  EXPECT_NE(tok->caPem.find("BEGIN CERTIFICATE"), std::string::npos);
  auto cert = loadKubeconfig(gDir + "/kubeconfig-cert");
  ASSERT_TRUE(cert) << cert.status().message();
  EXPECT_NE(cert->clientCertPem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(cert->clientKeyPem.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(K8sClient, KubeconfigFilesContextsAndErrors) {
  std::string d = gDir + "/kc-files";
  mkdir(d.c_str(), 0700);
  writeFile(d + "/token", "file-token\n");
  writeFile(d + "/config",
            "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
            "clusters:\n- name: c\n  cluster:\n    server: " + kApi + "/\n"
            "    certificate-authority: ../ca.crt\n"
            "users:\n- name: t\n  user:\n    tokenFile: token\n"
            "- name: e\n  user:\n    exec:\n      command: aws\n"
            "- name: ap\n  user:\n    auth-provider:\n      name: gcp\n"
            "contexts:\n- name: a\n  context: {cluster: c, user: t, namespace: ferry}\n"
            "- name: ex\n  context: {cluster: c, user: e}\n"
            "- name: ap\n  context: {cluster: c, user: ap}\n"
            "- name: nocluster\n  context: {cluster: zz, user: t}\n");
  auto a = loadKubeconfig(d + "/config");
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->server, kApi);  // trailing slash dropped
  EXPECT_EQ(a->ns, "ferry");
  ASSERT_TRUE(a->bearer());
  EXPECT_EQ(*a->bearer(), "file-token");
  EXPECT_NE(a->caPem.find("BEGIN CERTIFICATE"), std::string::npos);

  auto ex = loadKubeconfig(d + "/config", "ex");
  ASSERT_FALSE(ex);
  EXPECT_NE(ex.status().message().find("unsupported auth method \"exec\""), std::string::npos)
      << ex.status().message();
  EXPECT_NE(ex.status().message().find(d + "/config"), std::string::npos);
  EXPECT_NE(ex.status().message().find("user \"e\""), std::string::npos);
  auto ap = loadKubeconfig(d + "/config", "ap");
  ASSERT_FALSE(ap);
  EXPECT_NE(ap.status().message().find("unsupported auth method \"auth-provider\""), std::string::npos);
  auto nc = loadKubeconfig(d + "/config", "nocluster");
  ASSERT_FALSE(nc);
  EXPECT_NE(nc.status().message().find("cluster \"zz\" not found"), std::string::npos);
  auto none = loadKubeconfig(d + "/config", "nosuch");
  ASSERT_FALSE(none);
  EXPECT_NE(none.status().message().find("context \"nosuch\" not found"), std::string::npos);
}

TEST_F(K8sClient, InClusterConfigRereadsARotatedToken) {
  std::string sa = gDir + "/sa";
  mkdir(sa.c_str(), 0700);
  writeFile(sa + "/token", "sa-token-1");
  writeFile(sa + "/namespace", "kube-system");
  sh("cp " + gDir + "/ca.crt " + sa + "/ca.crt");
  fault("allow-token?token=sa-token-1&user=system:serviceaccount:kube-system:ferry");
  fault("allow-token?token=sa-token-2&user=system:serviceaccount:kube-system:ferry");
  setenv("KUBERNETES_SERVICE_HOST", "198.18.0.2", 1);
  setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
  auto cfg = inClusterConfig(sa);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(cfg) << cfg.status().message();
  EXPECT_EQ(cfg->server, kApi);
  EXPECT_EQ(cfg->ns, "kube-system");
  Client c(*cfg);
  ASSERT_TRUE(c.call("GET", "/api/v1/namespaces"));
  // the kubelet rotates the token: the next requests carry the new one
  fault("revoke-token?token=sa-token-1");
  writeFile(sa + "/token.new", "sa-token-2\n");
  ASSERT_EQ(rename((sa + "/token.new").c_str(), (sa + "/token").c_str()), 0);
  std::this_thread::sleep_for(1100ms);  // TokenFile re-checks at most every second
  auto r = c.call("GET", "/api/v1/namespaces");
  EXPECT_TRUE(r) << r.status().message();
  auto reqs = requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back()["user"], "system:serviceaccount:kube-system:ferry");

  unsetenv("KUBERNETES_SERVICE_HOST");
  auto missing = inClusterConfig(sa);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
}

// ---------------------------------------------------------------- errors

TEST_F(K8sClient, WrongTokenIsAClearErrorAndNeverSyncs) {
  auto cfg = loadKubeconfig(gDir + "/kubeconfig");
  ASSERT_TRUE(cfg);
  cfg->token = "wrong-token";
  auto c = std::make_shared<Client>(*cfg);
  auto r = c->call("GET", "/api/v1/services");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("401 Unauthorized"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("rejected the credentials"), std::string::npos);

  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return !refl.status().lastError.empty(); }));
  auto st = refl.status();
  EXPECT_NE(st.lastError.find("list services"), std::string::npos) << st.lastError;
  EXPECT_NE(st.lastError.find("401"), std::string::npos) << st.lastError;
  EXPECT_FALSE(st.synced);
  std::this_thread::sleep_for(500ms);  // retries (backoff) keep failing, logged once
  col.waitFor([] { return false; }, 100ms);
  EXPECT_FALSE(col.synced);
  std::lock_guard lk(logMu_);
  EXPECT_EQ(logs_.size(), 1u) << "an unchanged error is logged once";
}

TEST_F(K8sClient, ForbiddenNamesVerbAndResource) {
  fault("forbid?user=ferry-test&verb=list&resource=endpointslices");
  auto c = client();
  auto r = c->call("GET", resources::EndpointSlices.collectionPath());
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("403 Forbidden"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(
                "User \"ferry-test\" cannot list resource \"endpointslices\" in API group "
                "\"discovery.k8s.io\" at the cluster scope"),
            std::string::npos)
      << r.status().message();
}

TEST_F(K8sClient, TlsFailuresAreNamed) {
  auto cfg = loadKubeconfig(gDir + "/kubeconfig");
  ASSERT_TRUE(cfg);
  auto other = readFile(gDir + "/pki/other-ca.crt");
  ASSERT_TRUE(other);
  cfg->caPem = *other;
  Client c(*cfg);
  auto r = c.call("GET", "/api");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("TLS: the apiserver's certificate is not trusted"),
            std::string::npos)
      << r.status().message();
}

TEST_F(K8sClient, ClientCertificateAuth) {
  auto c = client("kubeconfig-cert");
  auto r = c->call("GET", "/api/v1/namespaces");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ((*r)["items"].size(), 4u);
  auto reqs = requests();
  EXPECT_EQ(reqs.back()["user"], "system:node:test");

  // a certificate from a CA the server does not trust: refused in the handshake
  auto cfg = loadKubeconfig(gDir + "/kubeconfig-cert");
  ASSERT_TRUE(cfg);
  cfg->clientCertPem = *readFile(gDir + "/pki/other-client.crt");
  cfg->clientKeyPem = *readFile(gDir + "/pki/other-client.key");
  Client bad(*cfg);
  auto r2 = bad.call("GET", "/api/v1/namespaces");
  ASSERT_FALSE(r2);
  EXPECT_TRUE(r2.status().message().find("TLS") != std::string::npos ||
              r2.status().message().find("connection lost") != std::string::npos ||
              r2.status().message().find("401") != std::string::npos)
      << r2.status().message();
}

// ---------------------------------------------------------------- discovery, status, leases

TEST_F(K8sClient, Discovery) {
  auto c = client();
  for (const auto* r : {&resources::Services, &resources::EndpointSlices, &resources::Nodes,
                        &resources::Leases}) {
    auto h = c->hasResource(*r);
    ASSERT_TRUE(h) << h.status().message();
    EXPECT_TRUE(*h) << r->id();
  }
  auto mlb = c->hasResource(resources::IPAddressPools);
  ASSERT_TRUE(mlb) << mlb.status().message();
  EXPECT_FALSE(*mlb) << "served only with --metallb";
  auto cidr = c->hasResource(resources::ServiceCIDRs);
  ASSERT_TRUE(cidr);
  EXPECT_FALSE(*cidr);
  startServer("--metallb --servicecidr");
  auto c2 = client();
  EXPECT_TRUE(*c2->hasResource(resources::IPAddressPools));
  EXPECT_TRUE(*c2->hasResource(resources::ServiceCIDRs));
}

TEST_F(K8sClient, ServiceStatusPatch) {
  auto c = client();
  json svc = mkService("default", "lb");
  svc["spec"]["type"] = "LoadBalancer";
  create(*c, svc);
  auto r = c->patchServiceStatus("default", "lb",
                                 {{"loadBalancer", {{"ingress", json::array({{{"ip", "198.18.0.200"}}})}}}});
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ((*r)["status"]["loadBalancer"]["ingress"][0]["ip"], "198.18.0.200");
  auto reqs = requests();
  const auto& last = reqs.back();
  EXPECT_EQ(last["method"], "PATCH");
  EXPECT_EQ(last["path"], "/api/v1/namespaces/default/services/lb/status");
  EXPECT_EQ(last["contentType"], "application/merge-patch+json");
  auto missing = c->patchServiceStatus("default", "nosuch", json::object());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("404 NotFound: services \"nosuch\" not found"),
            std::string::npos)
      << missing.status().message();
}

TEST_F(K8sClient, LeaseGetCreateConditionalUpdate) {
  auto c = client();
  auto g = c->getLease("kube-system", "ferry-lb");
  EXPECT_EQ(g.outcome, LeaseResult::NotFound) << g.error.message();
  json lease = {{"metadata", {{"name", "ferry-lb"}, {"namespace", "kube-system"}}},
                {"spec", {{"holderIdentity", "node1"}, {"leaseDurationSeconds", 15}}}};
  auto cr = c->createLease("kube-system", lease);
  ASSERT_EQ(cr.outcome, LeaseResult::Ok) << cr.error.message();
  EXPECT_EQ(c->createLease("kube-system", lease).outcome, LeaseResult::AlreadyExists);

  // node2 takes over with the resourceVersion it read; node1's stale update loses
  auto read = c->getLease("kube-system", "ferry-lb");
  ASSERT_EQ(read.outcome, LeaseResult::Ok);
  json l2 = read.lease;
  l2["spec"]["holderIdentity"] = "node2";
  auto up = c->updateLease("kube-system", l2);
  ASSERT_EQ(up.outcome, LeaseResult::Ok) << up.error.message();
  EXPECT_EQ(up.lease["spec"]["holderIdentity"], "node2");
  json stale = cr.lease;
  stale["spec"]["holderIdentity"] = "node1";
  auto lost = c->updateLease("kube-system", stale);
  EXPECT_EQ(lost.outcome, LeaseResult::Conflict) << lost.error.message();
  EXPECT_NE(lost.error.message().find("409 Conflict"), std::string::npos) << lost.error.message();
  EXPECT_EQ(c->getLease("kube-system", "ferry-lb").lease["spec"]["holderIdentity"], "node2");
  json norv = l2;
  norv["metadata"].erase("resourceVersion");
  EXPECT_EQ(c->updateLease("kube-system", norv).outcome, LeaseResult::Failed);
}

// ---------------------------------------------------------------- reflector

TEST_F(K8sClient, ListPaginatesThenSyncs) {
  auto c = client();
  for (int i = 0; i < 25; ++i) create(*c, mkService("default", "svc-" + std::to_string(100 + i)));
  EventQueue q;
  ReflectorOptions o;
  o.pageSize = 10;
  auto& refl = reflector(c, resources::Services, q, o);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  EXPECT_EQ(col.events.size(), 25u);
  std::set<std::string> names;
  for (const auto& e : col.events) {
    EXPECT_EQ(e.type, ObjectEvent::Added);
    EXPECT_EQ(e.kind, "Service");            // filled in: list items carry no kind
    EXPECT_EQ(e.apiVersion, "v1");
    EXPECT_EQ(e.object["kind"], "Service");
    EXPECT_EQ(e.ns, "default");
    names.insert(e.name);
  }
  EXPECT_EQ(names.size(), 25u);
  int pages = 0;
  for (const auto& r : requests())
    if (r["path"] == "/api/v1/services" && !r["query"].contains("watch")) {
      ++pages;
      EXPECT_EQ(r["query"]["limit"], "10");
      EXPECT_EQ(r["query"].contains("continue"), pages > 1);
    }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(refl.status().lists, 1u);
}

TEST_F(K8sClient, ListIsOneSnapshotAcrossPages) {
  auto c = client();
  for (int i = 0; i < 6; ++i) create(*c, mkService("default", "p-" + std::to_string(i)));
  // first page by hand, then a change, then the rest with the token
  auto p1 = c->call("GET", "/api/v1/services?limit=3");
  ASSERT_TRUE(p1);
  std::string cont = (*p1)["metadata"]["continue"];
  ASSERT_TRUE(c->call("DELETE", "/api/v1/namespaces/default/services/p-5"));
  auto p2 = c->call("GET", "/api/v1/services?limit=3&continue=" + cont);
  ASSERT_TRUE(p2) << p2.status().message();
  EXPECT_EQ((*p2)["items"].size(), 3u) << "p-5 is still in the snapshot";
  fault("compact");
  auto p3 = c->call("GET", "/api/v1/services?limit=3&continue=" + cont);
  ASSERT_FALSE(p3);
  EXPECT_NE(p3.status().message().find("410 Expired"), std::string::npos) << p3.status().message();
}

TEST_F(K8sClient, WatchDeliversAddModifyDelete) {
  auto c = client();
  create(*c, mkService("default", "a"));
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  ASSERT_EQ(col.events.size(), 1u);
  create(*c, mkService("default", "b"));
  json patch = {{"metadata", {{"labels", {{"x", "y"}}}}}};
  ASSERT_TRUE(c->call("PATCH", "/api/v1/namespaces/default/services/a", &patch,
                      "application/merge-patch+json"));
  ASSERT_TRUE(c->call("DELETE", "/api/v1/namespaces/default/services/b"));
  ASSERT_TRUE(col.waitFor([&] { return col.events.size() >= 4; }));
  ASSERT_EQ(col.events.size(), 4u);
  EXPECT_EQ(col.events[1].type, ObjectEvent::Added);
  EXPECT_EQ(col.events[1].name, "b");
  EXPECT_EQ(col.events[2].type, ObjectEvent::Modified);
  EXPECT_EQ(col.events[2].object["metadata"]["labels"]["x"], "y");
  EXPECT_EQ(col.events[3].type, ObjectEvent::Deleted);
  EXPECT_EQ(col.events[3].name, "b");
  auto st = refl.status();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.resourceVersion, col.events[3].resourceVersion);
  // the watch asked for bookmarks and started at the list's resourceVersion
  bool sawWatch = false;
  for (const auto& r : requests())
    if (r["query"].value("watch", "") == "1") {
      sawWatch = true;
      EXPECT_EQ(r["query"]["allowWatchBookmarks"], "true");
      EXPECT_FALSE(r["query"].value("resourceVersion", "").empty());
      EXPECT_FALSE(r["query"].value("timeoutSeconds", "").empty());
    }
  EXPECT_TRUE(sawWatch);
}

TEST_F(K8sClient, BookmarksAdvanceTheResourceVersion) {
  auto c = client();
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  std::string rv0 = refl.status().resourceVersion;
  // changes to another resource move the global resourceVersion; only a
  // bookmark can tell the services watch about it
  json node = {{"metadata", {{"name", "node1"}}}};
  auto n = c->call("POST", "/api/v1/nodes", &node);
  ASSERT_TRUE(n);
  std::string nodeRv = (*n)["metadata"]["resourceVersion"];
  ASSERT_TRUE(col.waitFor([&] {
    return std::stoll(refl.status().resourceVersion) >= std::stoll(nodeRv);
  }));
  EXPECT_GE(refl.status().bookmarks, 1u);
  EXPECT_TRUE(col.events.empty());
  EXPECT_LT(std::stoll(rv0), std::stoll(nodeRv));
}

TEST_F(K8sClient, ResumesAfterServerRestartWithoutRelist) {
  auto c = client();
  create(*c, mkService("default", "a"));
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  std::string rv = refl.status().resourceVersion;
  fault("restart?down=1");
  ASSERT_TRUE(col.waitFor([&] { return !refl.status().connected; }));
  ASSERT_TRUE(col.waitFor([&] { return refl.status().connected; }, 10000ms)) << refl.status().lastError;
  create(*c, mkService("default", "b"));
  ASSERT_TRUE(col.waitFor([&] { return col.count(ObjectEvent::Added, "b") == 1; }));
  auto st = refl.status();
  EXPECT_EQ(st.lists, 1u) << "resumed from the resourceVersion, no relist";
  EXPECT_EQ(st.expired, 0u);
  EXPECT_EQ(col.events.size(), 2u);
  EXPECT_TRUE(st.lastError.empty()) << st.lastError;
  bool resumed = false;
  for (const auto& r : requests())
    if (r["query"].value("watch", "") == "1" && r["query"].value("resourceVersion", "") == rv)
      resumed = true;
  EXPECT_TRUE(resumed);
}

TEST_F(K8sClient, ResumesAfterProcessRestart) {
  auto c = client();
  create(*c, mkService("default", "a"));
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  // a real restart of the server process: the store (and resourceVersions) persist
  ASSERT_EQ(sh(testenv() + " stop " + gDir), 0);
  ASSERT_EQ(sh(testenv() + " start " + gDir + " " + gNetns + " --bookmark-interval 0.3 >/dev/null"), 0);
  ASSERT_TRUE(col.waitFor([&] { return refl.status().connected; }, 10000ms)) << refl.status().lastError;
  create(*c, mkService("default", "b"));
  ASSERT_TRUE(col.waitFor([&] { return col.count(ObjectEvent::Added, "b") == 1; }));
  EXPECT_EQ(refl.status().lists, 1u);
  EXPECT_EQ(col.count(ObjectEvent::Added, "a"), 1u);
}

TEST_F(K8sClient, WatchCutMidStreamResumes) {
  auto c = client();
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  auto watchesBefore = refl.status().watches;
  fault("cut-watches");
  create(*c, mkService("default", "after-cut"));
  ASSERT_TRUE(col.waitFor([&] { return col.count(ObjectEvent::Added, "after-cut") == 1; }));
  auto st = refl.status();
  EXPECT_GT(st.watches, watchesBefore);
  EXPECT_EQ(st.lists, 1u);
  EXPECT_EQ(col.events.size(), 1u);
}

TEST_F(K8sClient, DeadStreamIsDetected) {
  auto c = client();
  EventQueue q;
  ReflectorOptions o;
  o.deadStream = 1500ms;
  startServer("--bookmark-interval 30");  // silent watches
  auto& refl = reflector(c, resources::Services, q, o);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  auto w = refl.status().watches;
  ASSERT_TRUE(col.waitFor([&] { return refl.status().watches > w; }, 5000ms))
      << "a silent stream is given up after deadStream and the watch reopened";
  EXPECT_EQ(refl.status().lists, 1u);
}

TEST_F(K8sClient, ExpiredRelistEmitsOnlyTheDifference) {
  auto c = client();
  for (const char* n : {"a", "b", "c"}) create(*c, mkService("default", n));
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  ASSERT_EQ(col.events.size(), 3u);
  // Keep the reflector from watching (403) while things change, then drop
  // the history so its resourceVersion is too old: 410 -> relist -> diff.
  fault("forbid?user=ferry-test&verb=watch&resource=services");
  fault("cut-watches");
  ASSERT_TRUE(col.waitFor([&] { return refl.status().lastError.find("403") != std::string::npos; }))
      << refl.status().lastError;
  ASSERT_TRUE(c->call("DELETE", "/api/v1/namespaces/default/services/b"));
  json patch = {{"metadata", {{"labels", {{"changed", "yes"}}}}}};
  ASSERT_TRUE(c->call("PATCH", "/api/v1/namespaces/default/services/c", &patch,
                      "application/merge-patch+json"));
  create(*c, mkService("default", "d"));
  fault("compact");
  fault("unforbid?user=ferry-test&verb=watch&resource=services");
  ASSERT_TRUE(col.waitFor([&] { return refl.status().expired >= 1 && col.events.size() >= 6; }));
  std::this_thread::sleep_for(300ms);
  col.waitFor([] { return false; }, 100ms);
  ASSERT_EQ(col.events.size(), 6u);
  EXPECT_EQ(col.count(ObjectEvent::Deleted, "b"), 1u);
  EXPECT_EQ(col.count(ObjectEvent::Modified, "c"), 1u);
  EXPECT_EQ(col.count(ObjectEvent::Added, "d"), 1u);
  EXPECT_EQ(col.count(ObjectEvent::Added, "a"), 1u) << "a unchanged: no event (no flush)";
  EXPECT_EQ(col.count(ObjectEvent::Deleted, "a"), 0u);
  for (size_t i = 3; i < col.events.size(); ++i) {
    if (col.events[i].name == "b") {
      EXPECT_EQ(col.events[i].type, ObjectEvent::Deleted);
      EXPECT_EQ(col.events[i].object["metadata"]["name"], "b") << "the last known object";
    }
  }
  auto st = refl.status();
  EXPECT_EQ(st.lists, 2u);
  EXPECT_EQ(st.objects, 3u);
  EXPECT_TRUE(st.lastError.empty());
}

TEST_F(K8sClient, ExpiredWatchEventForcesRelist) {
  auto c = client();
  create(*c, mkService("default", "a"));
  EventQueue q;
  auto& refl = reflector(c, resources::Services, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced && refl.status().connected; }));
  fault("expire-next-watch");
  fault("cut-watches");
  ASSERT_TRUE(col.waitFor([&] { return refl.status().expired == 1 && refl.status().lists == 2; }));
  ASSERT_TRUE(col.waitFor([&] { return refl.status().connected; }));
  EXPECT_EQ(col.events.size(), 1u) << "nothing changed: the relist emits nothing";
}

TEST_F(K8sClient, SyncedWaitsForEveryResource) {
  auto c = client();
  create(*c, mkService("default", "a"));
  fault("forbid?user=ferry-test&verb=list&resource=endpointslices");
  EventQueue q;
  auto& svc = reflector(c, resources::Services, q);
  auto& eps = reflector(c, resources::EndpointSlices, q);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return svc.status().synced; }));
  col.waitFor([] { return false; }, 300ms);
  EXPECT_FALSE(col.synced) << "endpointslices cannot be listed yet";
  EXPECT_EQ(col.events.size(), 1u);
  fault("unforbid?user=ferry-test&verb=list&resource=endpointslices");
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  EXPECT_TRUE(eps.status().synced);
}

TEST_F(K8sClient, StopIsPrompt) {
  auto c = client();
  EventQueue q;
  ReflectorOptions o;
  o.watchTimeoutMin = o.watchTimeoutMax = std::chrono::seconds(600);
  auto& refl = reflector(c, resources::Services, q, o);
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return refl.status().connected; }));
  auto t0 = std::chrono::steady_clock::now();
  refl.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
}

// ---------------------------------------------------------------- source set

TEST_F(K8sClient, SourceSetFollowsWhatDiscoveryServes) {
  startServer("--metallb");
  auto c = client();
  json pool = {{"apiVersion", "metallb.io/v1beta1"},
               {"kind", "IPAddressPool"},
               {"metadata", {{"name", "lan"}, {"namespace", "default"}}},
               {"spec", {{"addresses", json::array({"198.18.0.200-198.18.0.250"})}}}};
  ASSERT_TRUE(c->call("POST", resources::IPAddressPools.collectionPath("default"), &pool));
  create(*c, mkService("default", "a"));
  EventQueue q;
  SourceSetOptions o;
  o.reflector.backoffInitial = 100ms;
  SourceSet set(c, q, o);
  set.start();
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  auto f = set.followed();
  EXPECT_EQ(std::set<std::string>(f.begin(), f.end()),
            (std::set<std::string>{"services", "endpointslices.discovery.k8s.io", "nodes",
                                   "ipaddresspools.metallb.io"}))
      << "ServiceCIDRs are not served here";
  EXPECT_EQ(col.count(ObjectEvent::Added, "lan"), 1u);
  EXPECT_EQ(col.count(ObjectEvent::Added, "a"), 1u);
  for (const auto& e : col.events) {
    if (e.name == "lan") {
      EXPECT_EQ(e.kind, "IPAddressPool");
    }
  }
  EXPECT_EQ(set.status().size(), 4u);
  set.stop();
}

TEST_F(K8sClient, SourceSetNeverSyncsBeforeDiscovery) {
  auto cfg = loadKubeconfig(gDir + "/kubeconfig");
  ASSERT_TRUE(cfg);
  cfg->token = "late-token";
  auto c = std::make_shared<Client>(*cfg);
  EventQueue q;
  SourceSetOptions o;
  o.reflector.backoffInitial = 100ms;
  o.reflector.backoffMax = 300ms;
  o.reflector.log = [](const std::string&) {};
  SourceSet set(c, q, o);
  set.start();
  Collector col{q, {}, false};
  ASSERT_TRUE(col.waitFor([&] { return !set.discoveryError().empty(); }));
  EXPECT_NE(set.discoveryError().find("401"), std::string::npos) << set.discoveryError();
  col.waitFor([] { return false; }, 300ms);
  EXPECT_FALSE(col.synced);
  EXPECT_TRUE(set.followed().empty());
  fault("allow-token?token=late-token&user=ferry-test");
  ASSERT_TRUE(col.waitFor([&] { return col.synced; }));
  EXPECT_EQ(set.followed().size(), 3u);
  EXPECT_TRUE(set.discoveryError().empty());
}

}  // namespace
