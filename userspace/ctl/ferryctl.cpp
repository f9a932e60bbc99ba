// ferryctl: operator CLI for ferryd (kubectl-style views of the agent's state).
#include "ctl/client.h"
#include "ctl/commands.h"

#include <boost/program_options.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace ferry::ctl;

namespace {

const char* kUsage = R"(ferryctl - inspect a running ferryd

Usage:
  ferryctl [--socket PATH] get services|service|svc [-n NS | -A] [-o wide|json|name] [NAME]
  ferryctl [--socket PATH] get endpoints|endpoint|ep [-n NS | -A] [-o wide|json|name] [NAME]
  ferryctl [--socket PATH] get errors [-o json]
  ferryctl [--socket PATH] stats [-o json]
  ferryctl [--socket PATH] debug verify [-o json]
  ferryctl [--socket PATH] status [-o json]
  ferryctl [--socket PATH] cluster-info [dump] [-o json]

Commands:
  get services    Services as ferryd sees them, in kubectl's format:
                  NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE (-o wide adds SELECTOR
                  and REASON, why a LoadBalancer is <pending>; -A adds NAMESPACE
                  first). -o json prints a v1 List (or the object when NAME is
                  given); -o name prints service/NAME.
  get endpoints   Endpoints: NAME ENDPOINTS AGE (first 3 ready ip:port, then
                  " + N more..."; <none> without subsets).
  get errors      Manifests ferryd rejected: FILE OBJECT FIELD MESSAGE.
  stats           ferryd's counters: NAME VALUE.
  debug verify    ferryd rebuilds everything from its object store and compares
                  it with its incremental state (services, map contents, DNS
                  records); lists every difference, exit status 1 if any.
  status          Where ferryd's definitions come from: the manifest directory, or
                  the Kubernetes API (connected or not, last resourceVersion and
                  watch age per resource, events applied, the last error such as
                  a 401 or a 403 naming verb and resource). Exit status 1 while
                  the source is not connected or not synced.
  cluster-info    service-cluster-ip-range, the node-port range, cluster domain,
                  DNS address and the source, in both modes; `cluster-info dump`
                  prints them as JSON (`| grep -m 1 service-cluster-ip-range`).

Exit status: 0 ok (also when nothing matches: "No resources found ..." on stderr),
1 on errors (cannot reach ferryd, object not found, bad arguments).

Options)";

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts;
  opts.add_options()
      ("help,h", "show this help")
      ("socket", po::value<std::string>()->default_value(kDefaultSocket), "ferryd control socket (Unix stream)")
      ("namespace,n", po::value<std::string>()->default_value("default"), "namespace to list")
      ("all-namespaces,A", po::bool_switch(), "list objects of every namespace")
      ("output,o", po::value<std::string>()->default_value(""), "output format: wide, json or name")
      ("no-headers", po::bool_switch(), "do not print the header row")
      ("timeout-ms", po::value<int>()->default_value(10000), "give up waiting for ferryd after this long");
  po::options_description hidden;
  hidden.add_options()("args", po::value<std::vector<std::string>>(), "command words");
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("args", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ferryctl: " << e.what() << "\nRun 'ferryctl --help' for usage.\n";
    return 1;
  }
  std::vector<std::string> args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (vm.count("help") || args.empty() || args[0] == "help") {
    std::cout << kUsage << "\n" << opts << "\n";
    return vm.count("help") || (!args.empty() && args[0] == "help") ? 0 : 1;
  }

  const std::string socket = vm["socket"].as<std::string>();
  const std::string output = vm["output"].as<std::string>();
  const bool no_headers = vm["no-headers"].as<bool>();

  auto bad = [](const std::string& msg) {
    std::cerr << "ferryctl: " << msg << "\nRun 'ferryctl --help' for usage.\n";
    return 1;
  };

  GetOptions g;
  const std::string& cmd = args[0];
  if (cmd == "get") {
    if (args.size() < 2) return bad("get: missing resource type (services, endpoints or errors)");
    if (args.size() > 3) return bad("get: too many arguments");
    g.resource = canonical_resource(args[1]);
    if (g.resource.empty()) return bad("get: unknown resource type '" + args[1] + "'");
    if (args.size() == 3) g.name = args[2];
    g.ns = vm["namespace"].as<std::string>();
    g.all_namespaces = vm["all-namespaces"].as<bool>();
    g.output = output;
    g.no_headers = no_headers;
    g.now = static_cast<int64_t>(std::time(nullptr));
  } else if (cmd == "stats") {
    if (args.size() > 1) return bad("stats: too many arguments");
  } else if (cmd == "debug") {
    if (args.size() != 2 || args[1] != "verify") return bad("debug: the only subcommand is 'verify'");
  } else if (cmd == "status") {
    if (args.size() > 1) return bad("status: too many arguments");
  } else if (cmd == "cluster-info") {
    if (args.size() > 2 || (args.size() == 2 && args[1] != "dump"))
      return bad("cluster-info: the only subcommand is 'dump'");
  } else {
    return bad("unknown command '" + cmd + "'");
  }

  nlohmann::json snap;
  try {
    std::string wire = cmd == "debug" ? "verify" : cmd == "status" || cmd == "cluster-info" ? cmd : "snapshot";
    snap = request(socket, {{"cmd", wire}},
                   vm["timeout-ms"].as<int>());
  } catch (const ClientError& e) {
    std::cerr << "ferryctl: " << e.what() << "\n";
    return 1;
  }
  if (snap.is_object() && snap.contains("error")) {
    std::cerr << "ferryctl: ferryd: " << (snap["error"].is_string() ? snap["error"].get<std::string>() : snap["error"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
              << "\n";
    return 1;
  }

  Result r = cmd == "get"     ? cmd_get(snap, g)
             : cmd == "debug" ? cmd_verify(snap, output)
             : cmd == "status" ? cmd_status(snap, output)
             : cmd == "cluster-info" ? cmd_cluster_info(snap, output, args.size() == 2)
                              : cmd_stats(snap, output, no_headers);
  std::fputs(r.out.c_str(), stdout);
  std::fputs(r.err.c_str(), stderr);
  return r.rc;
}
