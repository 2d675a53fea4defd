// arbiter/: the command line and the environment rules of CONTRACT.md 1.2-1.3.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "../../arbiter/arbiter.h"

namespace {

arbiter::CommandLine parse(std::vector<const char*> args) {
  args.insert(args.begin(), "azmlinfsrv");
  return arbiter::parse_command_line(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("flags are read with both spellings of a value") {
  auto cli = parse({"--entry_script", "score.py", "--port=8080", "--worker_count", "3", "--rest"});
  REQUIRE(cli.outcome == arbiter::CommandLine::Outcome::run);
  CHECK(*cli.flags.entry_script == "score.py");
  CHECK(*cli.flags.port == 8080);
  CHECK(*cli.flags.worker_count == 3);
  CHECK(cli.flags.rest);
  CHECK_FALSE(cli.flags.model_dir.has_value());
}

TEST_CASE("bad values exit 1 with argparse's usage and error on stderr, options on stdout") {
  for (auto args : std::vector<std::vector<const char*>>{
           {"--port", "0"}, {"--port", "70000"}, {"--port", "abc"}, {"--worker_count", "0"}, {"--bogus"}}) {
    auto cli = parse(args);
    CHECK(cli.outcome == arbiter::CommandLine::Outcome::exit);
    CHECK(cli.exit_code == 1);
    CHECK(cli.err.rfind("usage: azmlinfsrv", 0) == 0);
    CHECK_THAT(cli.err, Catch::Contains("azmlinfsrv: error: "));
    CHECK_THAT(cli.out, Catch::Contains("Azure ML Inferencing HTTP server v"));
  }
  CHECK_THAT(parse({"--port", "0"}).err, Catch::Contains("argument --port: invalid validate_port value: '0'"));
  CHECK_THAT(parse({"--bogus"}).err, Catch::Contains("unrecognized arguments: --bogus"));
}

TEST_CASE("supervision flags: --reload, --graceful_timeout, --max_requests, --max_requests_jitter") {
  auto cli = parse({"--entry_script", "s.py", "--reload", "--graceful_timeout", "5", "--max_requests=100",
                    "--max_requests_jitter", "10"});
  REQUIRE(cli.outcome == arbiter::CommandLine::Outcome::run);
  CHECK(cli.flags.reload);
  CHECK(*cli.flags.graceful_timeout == 5);
  CHECK(*cli.flags.max_requests == 100);
  CHECK(*cli.flags.max_requests_jitter == 10);
  CHECK(parse({"--max_requests", "-1"}).exit_code == 1);
  CHECK_THAT(parse({"--graceful_timeout", "x"}).err, Catch::Contains("argument --graceful_timeout"));

  arbiter::Launch launch;
  setenv("WORKER_TIMEOUT", "7", 1);
  setenv("MAX_REQUESTS", "9", 1);
  setenv("AZUREML_ENTRY_SCRIPT", "/srv/app/score.py", 1);
  arbiter::apply_supervision_settings(parse({"--reload"}).flags, launch);
  CHECK(launch.error.empty());
  CHECK(launch.worker_timeout_s == 7);
  CHECK(launch.max_requests == 9);
  CHECK(launch.graceful_timeout_s == 30);
  CHECK(launch.reload);
  CHECK(launch.watch_dir == "/srv/app");
  setenv("WORKER_TIMEOUT", "soon", 1);
  arbiter::Launch bad;
  arbiter::apply_supervision_settings(arbiter::Flags{}, bad);
  CHECK_THAT(bad.error, Catch::Contains("WORKER_TIMEOUT='soon'"));
  unsetenv("WORKER_TIMEOUT");
  unsetenv("MAX_REQUESTS");
  unsetenv("AZUREML_ENTRY_SCRIPT");
}

TEST_CASE("-h prints help and exits 0") {
  auto cli = parse({"-h"});
  CHECK(cli.outcome == arbiter::CommandLine::Outcome::exit);
  CHECK(cli.exit_code == 0);
  CHECK_THAT(cli.out, Catch::Contains("--entry_script ENTRY_SCRIPT"));
}

TEST_CASE("the environment follows CONTRACT.md 1.3") {
  setenv("SERVER_PORT", "3535", 1);
  unsetenv("SEPERATE_HEALTH_ENDPOINT");
  unsetenv("AZUREML_MODEL_DIR");
  unsetenv("SERVER_VERSION_LOG_RESPONSE_ENABLED");
  unsetenv("AML_APP_ROOT");
  unsetenv("WORKER_COUNT");
  arbiter::Flags flags;
  flags.entry_script = "sub/../score.py";
  auto launch = arbiter::apply_flags_to_environment(flags, "/tmp");
  CHECK(launch.port == 5001);  // a pre-set SERVER_PORT is ignored
  CHECK(std::string(getenv("SERVER_PORT")) == "5001");
  CHECK(launch.health_port == 5001);
  CHECK(std::string(getenv("AZUREML_ENTRY_SCRIPT")) == "/tmp/score.py");
  CHECK(std::string(getenv("AML_APP_ROOT")) == "/tmp");
  CHECK(std::string(getenv("HTTP_X_MS_SERVER_VERSION")).rfind("azmlinfsrv/", 0) == 0);
  CHECK(launch.notices.at(0) == "The environment variable 'AZUREML_MODEL_DIR' has not been set.");
  std::string banner = arbiter::banner(launch);
  CHECK_THAT(banner, Catch::Contains("\nEntry Script Name: /tmp/score.py\n"));
  CHECK_THAT(banner, Catch::Contains("\nWorker Count: 1\n"));
  CHECK_THAT(banner, Catch::Contains("\nLiveness Probe: GET   127.0.0.1:5001/\n"));

  setenv("SEPERATE_HEALTH_ENDPOINT", "true", 1);
  setenv("SERVER_VERSION_LOG_RESPONSE_ENABLED", "notgood", 1);
  unsetenv("HTTP_X_MS_SERVER_VERSION");
  setenv("WORKER_COUNT", "2", 1);
  flags.port = 8000;
  auto separate = arbiter::apply_flags_to_environment(flags, "/tmp");
  CHECK(separate.health_port == 5000);
  CHECK(separate.worker_count == 2);
  CHECK(getenv("HTTP_X_MS_SERVER_VERSION") == nullptr);
  CHECK_THAT(arbiter::banner(separate), Catch::Contains("\nHealth Port: 5000\n"));

  setenv("WORKER_COUNT", "many", 1);
  CHECK_THAT(arbiter::apply_flags_to_environment(flags, "/tmp").error, Catch::Contains("WORKER_COUNT='many'"));
  unsetenv("WORKER_COUNT");
  unsetenv("SEPERATE_HEALTH_ENDPOINT");
  unsetenv("SERVER_VERSION_LOG_RESPONSE_ENABLED");
}
