#include "cluster_fixture.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace e2e {

namespace {

std::string g_prefix;
std::atomic<bool> g_upStarted{false};
std::atomic<bool> g_downDone{false};
std::mutex g_manifestMu;
std::set<std::string> g_testManifests;

// For the signal handler: prebuilt argv (async-signal-safe fork/execv/waitpid).
char g_sigScript[4096];
char g_sigPrefix[64];

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

void downFromSignal() {
  if (g_sigPrefix[0] == '\0') return;
  if (g_downDone.exchange(true)) return;
  pid_t pid = fork();
  if (pid == 0) {
    char bash[] = "/bin/bash";
    char down[] = "down";
    char* argv[] = {bash, g_sigScript, down, g_sigPrefix, nullptr};
    execv(bash, argv);
    _exit(127);
  }
  if (pid > 0) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

void onSignal(int sig) {
  static const char msg[] = "\ne2e: signal received, tearing the test cluster down\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  downFromSignal();
  signal(sig, SIG_DFL);
  raise(sig);
}

void installHandlers() {
  static bool done = false;
  if (done) return;
  done = true;
  std::atexit([] { Cluster::down(); });
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGPIPE}) {
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(sig, &sa, nullptr);
  }
}

class TeardownEnv : public ::testing::Environment {
 public:
  void TearDown() override { Cluster::down(); }
};
[[maybe_unused]] ::testing::Environment* const g_env =
    ::testing::AddGlobalTestEnvironment(new TeardownEnv);

int parsePort(const std::string& s) {
  try {
    return std::stoi(s);
  } catch (...) {
    return 0;
  }
}

// "1.2.3.4:80" or "[::1]:80" -> ip, port
void splitHostPort(const std::string& hp, std::string* ip, int* port) {
  auto c = hp.rfind(':');
  if (c == std::string::npos) {
    *ip = hp;
    *port = 0;
    return;
  }
  std::string h = hp.substr(0, c);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  *ip = h;
  *port = parsePort(hp.substr(c + 1));
}

Answer parseLine(const std::string& line) {
  Answer a;
  std::istringstream is(line);
  std::string name, client, local;
  if (!(is >> name >> client >> local)) return a;
  a.name = name;
  splitHostPort(client, &a.clientIp, &a.clientPort);
  splitHostPort(local, &a.localIp, &a.localPort);
  return a;
}

bool g_upOk = false;
std::string g_upErr;
bool g_upTried = false;
bool g_fixtureUp = false;  // e2e_tests --cluster-up

bool runStep(const std::string& cmd, std::string* err, int timeoutSec = 60) {
  ShResult r = sh(cmd, timeoutSec);
  if (r.rc != 0) {
    *err = "setup step failed (rc " + std::to_string(r.rc) + "): " + cmd + "\n" + r.out;
    return false;
  }
  return true;
}

const char* kPods = R"(apiVersion: v1
kind: Pod
metadata:
  name: a
  namespace: default
  labels: {app: web, tier: front, name: a}
spec:
  nodeName: node1
  containers:
  - name: echo
    ports: [{name: http, containerPort: 8080}, {name: alt, containerPort: 9090}]
status:
  phase: Running
  podIP: 198.18.129.2
  podIPs: [{ip: 198.18.129.2}, {ip: "2001:db8:1:1::2"}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: b
  namespace: default
  labels: {app: web, tier: front, name: b}
spec:
  nodeName: node1
  containers:
  - name: echo
    ports: [{name: http, containerPort: 9090}, {name: other, containerPort: 8080}]
status:
  phase: Running
  podIP: 198.18.129.3
  podIPs: [{ip: 198.18.129.3}, {ip: "2001:db8:1:1::3"}]
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata:
  name: c
  namespace: default
  labels: {app: web, name: c}
spec:
  nodeName: node2
  containers:
  - name: echo
    ports: [{name: http, containerPort: 8080}, {name: alt, containerPort: 9090}]
status:
  phase: Running
  podIP: 198.18.130.2
  podIPs: [{ip: 198.18.130.2}, {ip: "2001:db8:1:2::2"}]
  conditions: [{type: Ready, status: "True"}]
)";

}  // namespace

// ------------------------------------------------------------------ shell

std::string q(const std::string& s) {
  std::string r = "'";
  for (char c : s) {
    if (c == '\'')
      r += "'\\''";
    else
      r += c;
  }
  return r + "'";
}

ShResult killHard(int pid) {
  std::string p = std::to_string(pid);
  // Dead means every thread gone: a zombie leader whose other threads are
  // still exiting holds the process's files (and the agent's flocks).
  return sh("kill -9 " + p + " && for i in $(seq 50); do "
            "s=$(awk '{print $3}' /proc/" + p + "/stat 2>/dev/null); "
            "[ -z \"$s\" ] && exit 0; "
            "[ \"$s\" = Z ] && [ \"$(ls /proc/" + p + "/task 2>/dev/null | wc -l)\" -le 1 ] && exit 0; "
            "sleep 0.1; done; exit 1",
            10);
}

ShResult sh(const std::string& cmd, int timeoutSec, bool mergeStderr) {
  std::string full = "timeout -k 2 " + std::to_string(timeoutSec) + " bash -c " + q(cmd) +
                     (mergeStderr ? " 2>&1" : "") + " </dev/null";
  ShResult r;
  FILE* f = popen(full.c_str(), "r");
  if (!f) {
    r.out = std::string("popen failed: ") + std::strerror(errno);
    return r;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  int st = pclose(f);
  if (st == -1)
    r.rc = -1;
  else if (WIFEXITED(st))
    r.rc = WEXITSTATUS(st);
  else if (WIFSIGNALED(st))
    r.rc = 128 + WTERMSIG(st);
  return r;
}

bool waitFor(const std::function<bool()>& pred, Ms timeout, Ms step) {
  if (timeout > Ms(10000)) timeout = Ms(10000);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

// ------------------------------------------------------------------ paths

const std::string& prefix() { return g_prefix; }
std::string runDir() { return "/tmp/ferry-" + g_prefix; }
std::string manifestsDir() { return runDir() + "/manifests"; }
std::string clusterSh() { return std::string(FERRY_SOURCE_DIR) + "/scripts/cluster.sh"; }
std::string echoBin() { return std::string(FERRY_BINARY_DIR) + "/ferry-echo"; }
std::string ferryctlBin() { return std::string(FERRY_BINARY_DIR) + "/ferryctl"; }
std::string socketOf(const std::string& node) { return runDir() + "/" + node + ".sock"; }

// ------------------------------------------------------------------ manifests

void writeManifest(const std::string& name, const std::string& yaml) {
  std::string dir = manifestsDir();
  std::string tmp = dir + "/." + name + ".tmp";
  {
    std::ofstream o(tmp, std::ios::trunc);
    o << yaml;
  }
  if (std::rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    ADD_FAILURE() << "cannot write manifest " << name << ": " << std::strerror(errno);
    return;
  }
  std::lock_guard<std::mutex> l(g_manifestMu);
  g_testManifests.insert(name);
}

void removeManifest(const std::string& name) {
  std::remove((manifestsDir() + "/" + name).c_str());
  std::lock_guard<std::mutex> l(g_manifestMu);
  g_testManifests.erase(name);
}

std::string FamilyAddrs::vip(int x, int y) const {
  char buf[64];
  if (v6())
    std::snprintf(buf, sizeof buf, "2001:db8:ffff::%x", (x << 8) | y);
  else
    std::snprintf(buf, sizeof buf, "198.19.%d.%d", x, y);
  return buf;
}

std::string FamilyAddrs::podIp(const std::string& n) const {
  if (n == "pod-a") return podA;
  if (n == "pod-b") return podB;
  if (n == "pod-c") return podC;
  return "";
}

Answer parseAnswer(const std::string& line) { return parseLine(line); }

bool FamilyAddrs::v6() const { return std::string(podA).find(':') != std::string::npos; }

std::string serviceYaml(const std::string& name, const std::string& clusterIP,
                        const std::string& selector, const std::string& ports) {
  std::string y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\n  namespace: default\nspec:\n  type: ClusterIP\n";
  if (!clusterIP.empty()) y += "  clusterIP: " + clusterIP + "\n";
  if (!selector.empty()) y += "  selector: {" + selector + "}\n";
  y += "  ports: " + ports + "\n";
  return y;
}

// ------------------------------------------------------------------ exec / ask

ShResult exec(const std::string& where, const std::string& cmd, int timeoutSec) {
  if (where == "ext") return sh("ip netns exec " + g_prefix + "-ext " + cmd, timeoutSec);
  std::string sub = where.rfind("node", 0) == 0 ? "node-exec" : "pod-exec";
  return sh(q(clusterSh()) + " " + sub + " " + g_prefix + " " + where + " " + cmd, timeoutSec);
}

int established(const std::string& where, int localPort, const std::string& peer) {
  ShResult r = exec(where, "ss -Htn state established " +
                               q("( sport = :" + std::to_string(localPort) + " )"), 10);
  if (r.rc != 0) return 0;
  int n = 0;
  std::istringstream is(r.out);
  for (std::string line; std::getline(is, line);) {
    // Recv-Q Send-Q Local:Port Peer:Port
    std::istringstream ls(line);
    std::string rq, sq, local, remote;
    if (!(ls >> rq >> sq >> local >> remote)) continue;
    std::string ip;
    int port = 0;
    splitHostPort(remote, &ip, &port);
    if (ip.rfind("::ffff:", 0) == 0) ip = ip.substr(7);  // IPv4-mapped (dual-stack socket)
    if (peer.empty() || ip == peer) ++n;
  }
  return n;
}

std::ostream& operator<<(std::ostream& os, const Answer& a) {
  return os << "{rc=" << a.rc << " out=\"" << trim(a.raw) << "\"}";
}

Answer ask(const std::string& where, const std::string& proto, const std::string& ip, int port,
           int timeoutMs, const std::string& extra) {
  ShResult r = exec(where, q(echoBin()) + " ask " + proto + " " + ip + " " + std::to_string(port) +
                               " --timeout-ms " + std::to_string(timeoutMs) + " " + extra,
                    timeoutMs / 1000 + 15);
  Answer a;
  std::istringstream is(r.out);
  std::string line;
  while (std::getline(is, line)) {
    if (line.rfind("peer ", 0) == 0) {
      a.peer = trim(line.substr(5));
      continue;
    }
    if (line == "refused" || line == "timeout" || line.rfind("ferry-echo:", 0) == 0) continue;
    Answer p = parseLine(line);
    if (!p.name.empty() && a.name.empty()) {
      p.peer = a.peer;
      a = p;
    }
  }
  a.rc = r.rc;
  a.raw = r.out;
  return a;
}

std::pair<std::vector<Answer>, int> askMany(const std::string& where, const std::string& proto,
                                            const std::string& ip, int port, int count,
                                            int timeoutMs) {
  ShResult r = exec(where, q(echoBin()) + " ask " + proto + " " + ip + " " + std::to_string(port) +
                               " --timeout-ms " + std::to_string(timeoutMs) + " --count " +
                               std::to_string(count),
                    (timeoutMs / 1000 + 1) * 2 + 20);
  std::vector<Answer> out;
  std::istringstream is(r.out);
  std::string line;
  while (std::getline(is, line)) {
    Answer p = parseLine(line);
    if (p.name.empty() || line == "refused" || line == "timeout") continue;
    if (line.rfind("ferry-echo:", 0) == 0) continue;
    p.rc = 0;
    p.raw = line;
    out.push_back(p);
  }
  if (r.rc != 0) {
    std::cerr << "askMany " << where << " " << proto << " " << ip << ":" << port
              << " rc=" << r.rc << " output:\n"
              << r.out << "\n";
  }
  return {out, r.rc};
}

Answer askUntil(const std::string& where, const std::string& proto, const std::string& ip,
                int port, const std::function<bool(const Answer&)>& pred, Ms timeout,
                int askTimeoutMs) {
  Answer last;
  waitFor(
      [&] {
        last = ask(where, proto, ip, port, askTimeoutMs);
        return pred(last);
      },
      timeout, Ms(50));
  return last;
}

// ------------------------------------------------------------------ ferryctl

ShResult ferryctl(const std::string& node, const std::string& args, bool mergeStderr) {
  return sh(q(ferryctlBin()) + " --socket " + q(socketOf(node)) + " " + args, 15, mergeStderr);
}

nlohmann::json ferryctlJson(const std::string& node, const std::string& what) {
  ShResult r = ferryctl(node, "get " + what + " -o json", false);
  if (r.rc != 0) return nlohmann::json();
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nlohmann::json();
  }
}

nlohmann::json agentReply(const std::string& node, int timeoutMs) {
  std::string path = socketOf(node);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) return nlohmann::json();
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nlohmann::json();
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return nlohmann::json();
  const std::string req = "{\"cmd\": \"snapshot\"}\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return nlohmann::json();
  auto deadline = std::chrono::steady_clock::now() + Ms(timeoutMs);
  std::string reply;
  char buf[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.back() == '\n') {  // a complete document ends the reply, as for ferryctl
      auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) return j;
    }
  }
  auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json() : j;
}

std::string clusterIPOf(const std::string& node, const std::string& name) {
  nlohmann::json j = ferryctlJson(node, "services");
  if (!j.is_object() || !j.contains("items")) return "";
  for (auto& it : j["items"]) {
    if (it.value(nlohmann::json::json_pointer("/metadata/name"), std::string()) == name &&
        it.value(nlohmann::json::json_pointer("/metadata/namespace"), std::string("default")) == "default")
      return it.value(nlohmann::json::json_pointer("/spec/clusterIP"), std::string());
  }
  return "";
}

// ------------------------------------------------------------------ cluster

namespace {

// CTest mode: the fixture test `e2e_cluster_up` brought the cluster up and
// each case attaches to it (FERRY_E2E_ATTACH=1, set by CMakeLists.txt).
bool attachMode() {
  const char* a = std::getenv("FERRY_E2E_ATTACH");
  return a && std::string(a) == "1";
}

// Where e2e_cluster_up leaves the prefix when FERRY_PREFIX is not set
// (ctest run directly, without scripts/test.sh).
std::string prefixFile() { return std::string(FERRY_BINARY_DIR) + "/e2e-cluster.prefix"; }

std::string sharedPrefix() {
  const char* p = std::getenv("FERRY_PREFIX");
  if (p && *p) return p;
  std::ifstream f(prefixFile());
  std::string s;
  std::getline(f, s);
  return trim(s);
}

bool agentsAnswer(Ms timeout) {
  return waitFor([] {
    for (const char* node : {"node1", "node2"})
      if (!ferryctlJson(node, "services").is_object()) return false;
    return true;
  }, timeout, Ms(100));
}

bool attach(std::string* err) {
  g_prefix = sharedPrefix();
  if (g_prefix.empty()) {
    *err = "FERRY_E2E_ATTACH=1 but no FERRY_PREFIX and no " + prefixFile() +
           " (the e2e_cluster_up fixture test brings the cluster up)";
    return false;
  }
  if (access(("/run/netns/" + g_prefix + "-lan").c_str(), F_OK) != 0) {
    *err = "no test cluster " + g_prefix + " (did the e2e_cluster_up fixture test pass?)";
    return false;
  }
  if (agentsAnswer(Ms(3000))) return true;
  // an earlier case left an agent down: bring it back, once
  for (const char* node : {"node1", "node2"}) {
    if (ferryctlJson(node, "services").is_object()) continue;
    std::string cs = q(clusterSh());
    sh(cs + " stop-agent " + g_prefix + " " + node, 30);
    ShResult r = sh(cs + " start-agent " + g_prefix + " " + node + " >/dev/null", 30);
    if (r.rc != 0) {
      *err = std::string("agent on ") + node + " of cluster " + g_prefix +
             " is down and does not restart: " + r.out;
      return false;
    }
  }
  if (!agentsAnswer(Ms(5000))) {
    *err = "agents of cluster " + g_prefix + " do not answer ferryctl";
    return false;
  }
  return true;
}

}  // namespace

bool Cluster::ensureOutside(std::string* err) {
  auto running = [] {
    return sh("ip netns exec " + prefix() + "-out ss -Hlun 'sport = :53' | grep -q . && "
              "test $(ip netns exec " + prefix() + "-out ss -Hltn 'sport = :80' | wc -l) = 2",
              10).rc == 0;
  };
  if (running()) return true;
  std::string cs = q(clusterSh()) + " ", P = prefix(), e;
  if (sh("test -e /run/netns/" + P + "-out", 5).rc != 0 && !runStep(cs + "outside-up " + P, &e))
    return *err = e, false;
  std::string www = runDir() + "/outside-www";
  if (!runStep("mkdir -p " + q(www) + " && printf '%s\\n' " + q(kOutsideHttpBody) + " > " +
                   q(www + "/get"), &e) ||
      !runStep(cs + "outside-exec " + P +
                   " setsid -f dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv"
                   " --no-hosts --pid-file= --user=root --bind-interfaces --listen-address=" +
                   kOutsideDns + " --port=53 --local=/example.test/ --host-record=httpbin.example.test," +
                   kOutsideHttp + "," + kOutsideHttp6 + " --host-record=www.example.test," +
                   kOutsideHttp + "," + kOutsideHttp6 + " >/dev/null 2>&1", &e))
    return *err = e, false;
  for (const char* ip : {kOutsideHttp, kOutsideHttp6})
    if (!runStep(cs + "outside-exec " + P + " setsid -f /usr/bin/python3 -m http.server 80 --bind " +
                     ip + " --directory " + q(www) + " >/dev/null 2>&1", &e))
      return *err = e, false;
  if (!waitFor(running, Ms(5000), Ms(100)))
    return *err = "dnsmasq / http.server in " + P + "-out not listening", false;
  return true;
}

bool Cluster::ensureUp(std::string* err) {
  if (g_upTried) {
    *err = g_upErr;
    return g_upOk;
  }
  g_upTried = true;
  setenv("FERRY_BUILD", FERRY_BINARY_DIR, 1);
  if (attachMode()) {
    g_upOk = attach(&g_upErr);
    *err = g_upErr;
    return g_upOk;
  }
  installHandlers();
  // who owns the run (scripts/cleanup.sh leaves it alone while the owner lives):
  // this process, or with --cluster-up the caller's (test.sh's, else ctest's)
  if (!g_fixtureUp || !std::getenv("FERRY_OWNER"))
    setenv("FERRY_OWNER", std::to_string(g_fixtureUp ? getppid() : getpid()).c_str(), 1);

  for (const char* bin : {"ferryd", "ferryctl", "ferry-echo"}) {
    std::string p = std::string(FERRY_BINARY_DIR) + "/" + bin;
    if (access(p.c_str(), X_OK) != 0) {
      g_upErr = "missing " + p + " (build ferryd ferryctl ferry-echo first)";
      *err = g_upErr;
      return false;
    }
  }
  std::string P;
  const char* envPrefix = std::getenv("FERRY_PREFIX");
  if (g_fixtureUp && envPrefix && *envPrefix) {
    P = envPrefix;
  } else {
    ShResult np = sh(q(clusterSh()) + " new-prefix", 20);
    P = trim(np.out);
    if (np.rc != 0 || P.empty()) {
      g_upErr = "cluster.sh new-prefix failed: " + np.out;
      *err = g_upErr;
      return false;
    }
  }
  if (P.size() >= sizeof g_sigPrefix) {
    g_upErr = "prefix too long: " + P;
    *err = g_upErr;
    return false;
  }
  g_prefix = P;
  std::snprintf(g_sigScript, sizeof g_sigScript, "%s", clusterSh().c_str());
  std::snprintf(g_sigPrefix, sizeof g_sigPrefix, "%s", P.c_str());
  g_upStarted = true;

  auto fail = [&](const std::string& e) {
    g_upErr = e;
    *err = e;
    down();
    return false;
  };
  std::string cs = q(clusterSh());
  std::string e;
  if (!runStep(cs + " up " + P, &e, 90)) return fail(e);
  struct PodDef {
    const char *node, *name, *ip, *ip6;
  };
  for (PodDef p : {PodDef{"node1", "a", kPodA, kPodA6}, PodDef{"node1", "b", kPodB, kPodB6},
                   PodDef{"node2", "c", kPodC, kPodC6}}) {
    if (!runStep(cs + " pod " + P + " " + p.node + " " + p.name + " " + p.ip + "," + p.ip6, &e))
      return fail(e);
    std::string serve = cs + " pod-exec " + P + " " + p.name + " setsid -f " + q(echoBin()) +
                        " serve --name pod-" + p.name +
                        " --tcp 8080 --tcp 9090 --udp 5353 >/dev/null 2>&1";
    if (!runStep(serve, &e)) return fail(e);
  }
  if (!runStep(cs + " pod-exec " + P + " c iperf3 -s -D >/dev/null 2>&1", &e)) return fail(e);
  if (!runStep(cs + " node-exec " + P + " node2 setsid -f " + q(echoBin()) +
                   " serve --name node2-host --tcp 7070 --bind 198.18.0.12 >/dev/null 2>&1",
               &e))
    return fail(e);
  // the same host-network server on node2's IPv6 address (one --bind each)
  if (!runStep(cs + " node-exec " + P + " node2 setsid -f " + q(echoBin()) +
                   " serve --name node2-host --tcp 7070 --bind " + kNode2v6 +
                   " >/dev/null 2>&1",
               &e))
    return fail(e);
  {
    std::ofstream o(manifestsDir() + "/pods.yaml");
    o << kPods;
    if (!o) return fail("cannot write pods.yaml");
  }
  for (const char* node : {"node1", "node2"}) {
    if (!runStep(cs + " start-agent " + P + " " + node + " >/dev/null", &e)) return fail(e);
  }
  // servers listening in every pod and on node2; agents answering ferryctl
  bool ready = waitFor([&] {
    for (const char* pod : {"a", "b", "c"}) {
      std::string cmd = "ss -Hltn 'sport = :8080' | grep -q . && ss -Hltn 'sport = :9090' | "
                        "grep -q . && ss -Hlun 'sport = :5353' | grep -q .";
      if (sh(cs + " pod-exec " + P + " " + pod + " bash -c " + q(cmd), 10).rc != 0) return false;
    }
    if (sh(cs + " pod-exec " + P + " c bash -c " + q("ss -Hltn 'sport = :5201' | grep -q ."), 10)
            .rc != 0)
      return false;
    if (sh("ip netns exec " + P + "-node2 ss -Hltn 'sport = :7070' | grep -c . | grep -qx 2", 10)
            .rc != 0)
      return false;
    for (const char* node : {"node1", "node2"}) {
      if (!ferryctlJson(node, "services").is_object()) return false;
    }
    return true;
  });
  if (!ready) return fail("servers or agents not ready after 5 s");
  if (!ensureOutside(&e)) return fail(e);
  g_upOk = true;
  return true;
}

int Cluster::fixtureUp() {
  g_fixtureUp = true;
  std::string err;
  if (!ensureUp(&err)) {
    std::fprintf(stderr, "e2e: test cluster not up: %s\n", err.c_str());
    return 1;
  }
  if (!std::getenv("FERRY_PREFIX") || !*std::getenv("FERRY_PREFIX")) {
    std::ofstream o(prefixFile(), std::ios::trunc);
    o << prefix() << "\n";
  }
  g_downDone = true;  // stays up for the cases; e2e_cluster_down removes it
  std::printf("e2e: test cluster %s is up\n", prefix().c_str());
  return 0;
}

int Cluster::fixtureDown() {
  std::string P = sharedPrefix();
  if (P.empty()) {
    std::printf("e2e: no test cluster to remove\n");
    return 0;
  }
  ShResult r = sh(q(clusterSh()) + " down " + q(P), 120);
  std::remove(prefixFile().c_str());
  std::printf("e2e: test cluster %s removed\n%s", P.c_str(), r.out.c_str());
  return r.rc == 0 ? 0 : 1;
}

void Cluster::down() {
  if (!g_upStarted || g_prefix.empty()) return;
  if (g_downDone.exchange(true)) return;
  ShResult r = sh(q(clusterSh()) + " down " + g_prefix, 120);
  if (r.rc != 0) std::fprintf(stderr, "e2e: cluster.sh down %s failed: %s\n", g_prefix.c_str(),
                              r.out.c_str());
}

void ClusterTest::SetUpTestSuite() {
  std::string err;
  Cluster::ensureUp(&err);
}

void ClusterTest::SetUp() {
  std::string err;
  if (!Cluster::ensureUp(&err)) GTEST_FAIL() << "test cluster is not up: " << err;
}

std::string familyName(const ::testing::TestParamInfo<Family>& info) {
  return info.param == Family::IPv6 ? "IPv6" : "IPv4";
}

// Every TEST_P(ClusterFamilyTest, ...) of the suite, in both families.
INSTANTIATE_TEST_SUITE_P(ByFamily, ClusterFamilyTest, kFamilies, familyName);

std::string hostPort(const std::string& ip, int port) {
  std::string h = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  return h + ":" + std::to_string(port);
}

bool ensureClientPod(std::string* err) {
  if (access(("/run/netns/" + prefix() + "-pod-cl").c_str(), F_OK) == 0) return true;
  ShResult r = sh(q(clusterSh()) + " pod " + prefix() + " node1 cl " + kCl + "," + kCl6, 30);
  if (r.rc != 0) *err = "cluster.sh pod cl: " + r.out;
  return r.rc == 0;
}

void ClusterTest::TearDown() {
  std::set<std::string> names;
  {
    std::lock_guard<std::mutex> l(g_manifestMu);
    names = g_testManifests;
  }
  for (const auto& n : names) removeManifest(n);
}

}  // namespace e2e
