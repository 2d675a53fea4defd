// azmlinfsrv: parse the command line, set up the environment, print the banner, become the arbiter.
#include <limits.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "../log/log.h"
#include "arbiter.h"

namespace {

// The Python package ships in the source tree (a build-tree binary) or beside the installed binary.
std::string find_package_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.parent_path() == fs::path(AZMLINFSRV_BUILD_DIR)) return AZMLINFSRV_SOURCE_PACKAGE_DIR;
  if (!ec) {
    fs::path relative = exe.parent_path() / AZMLINFSRV_INSTALLED_PACKAGE_DIR_FROM_BINDIR;
    if (fs::exists(relative / "azureml_inference_server_http" / "__init__.py", ec))
      return fs::weakly_canonical(relative, ec).string();
  }
  return AZMLINFSRV_INSTALLED_PACKAGE_DIR;
}

std::string current_directory() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof buf) ? std::string(buf) : std::string(".");
}

}  // namespace

int main(int argc, char** argv) {
  arbiter::CommandLine cli = arbiter::parse_command_line(argc, argv);
  if (cli.outcome == arbiter::CommandLine::Outcome::exit) {
    std::cerr << cli.err << std::flush;
    std::cout << cli.out << std::flush;
    return cli.exit_code;
  }

  // The flag, else AZMLINFSRV_LOG_FORMAT; exported so the workers' Python logging follows.
  const char* log_format_env = getenv("AZMLINFSRV_LOG_FORMAT");
  std::string log_format = cli.flags.text_of(arbiter::Opt::log_format).value_or(log_format_env ? log_format_env : "text");
  if (log_format != "text" && log_format != "json") {
    std::cerr << "azmlinfsrv: error: AZMLINFSRV_LOG_FORMAT='" << log_format
              << "' is not a log format. Set it to text or json, or unset it.\n";
    return 1;
  }
  logline::set_format(log_format == "json" ? logline::Format::json : logline::Format::text);
  setenv("AZMLINFSRV_LOG_FORMAT", log_format.c_str(), 1);

  // --replay writes its answer on stdout; everything else goes to stderr (worker/replay.cpp).
  const auto& replay_file = cli.flags.text_of(arbiter::Opt::replay);
  if (cli.flags.is_on(arbiter::Opt::pdb) && !replay_file) {
    std::cerr << "azmlinfsrv: error: --pdb stops in pdb where run() raised in a replay: give it with --replay FILE "
                 "(a file --capture saved, or a JSON body).\n";
    return 1;
  }
  logline::Stream out = replay_file ? logline::Stream::err : logline::Stream::out;

  std::string package_dir = find_package_dir();
  logline::write(out, logline::Level::info, "azmlinfsrv",
                 "Loaded logging config from " + package_dir + "/azureml_inference_server_http/logging.json");
  if (!cli.flags.text_of(arbiter::Opt::entry_script) && !cli.flags.text_of(arbiter::Opt::config_file)) {
    logline::write(out, logline::Level::error, "azmlinfsrv", "Error!");
    logline::write(out, logline::Level::error, "azmlinfsrv",
                   "Either provide an entry_script using --entry_script or provide a path to the configuration file "
                   "using --config_file");
    return 1;
  }

  arbiter::Launch launch = arbiter::apply_flags_to_environment(cli.flags, current_directory());
  if (launch.error.empty()) arbiter::apply_supervision_settings(cli.flags, launch);
  if (!launch.error.empty()) {
    logline::write(out, logline::Level::error, "azmlinfsrv", launch.error);
    return 1;
  }
  std::string notices;
  for (const std::string& line : launch.notices) notices += line + "\n";
  if (replay_file) {
    logline::write_block(logline::Stream::err, notices);
    worker::ReplayOptions replay;
    replay.file = *replay_file;
    replay.pdb = cli.flags.is_on(arbiter::Opt::pdb);
    replay.interpreter = cli.flags.text_of(arbiter::Opt::python).value_or("");
    replay.default_interpreter = AZMLINFSRV_PYTHON;
    replay.package_dir = package_dir;
    replay.server_port = launch.port;
    return worker::replay(replay);
  }
  // One write each, before any fork, so no worker inherits unwritten output.
  logline::write_block(logline::Stream::out, notices);
  logline::write_block(logline::Stream::out, arbiter::banner(launch));

  arbiter::raise_open_file_limit();
  arbiter::WorkerProgram program;
  program.interpreter = cli.flags.text_of(arbiter::Opt::python).value_or("");
  program.default_interpreter = AZMLINFSRV_PYTHON;
  program.package_dir = package_dir;
  return arbiter::serve(launch, program);
}
