// arbiter/: the options table, the command line and the environment rules of docs/behaviour.md 1.2-1.3.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "../../arbiter/arbiter.h"
#include "../../arbiter/options.h"

namespace {

arbiter::CommandLine parse(std::vector<const char*> args) {
  args.insert(args.begin(), "azmlinfsrv");
  return arbiter::parse_command_line(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("flags are read with both spellings of a value") {
  auto cli = parse({"--entry_script", "score.py", "--port=8080", "--worker_count", "3", "--rest"});
  REQUIRE(cli.outcome == arbiter::CommandLine::Outcome::run);
  CHECK(*cli.flags.text_of(arbiter::Opt::entry_script) == "score.py");
  CHECK(*cli.flags.number_of(arbiter::Opt::port) == 8080);
  CHECK(*cli.flags.number_of(arbiter::Opt::worker_count) == 3);
  CHECK(cli.flags.is_on(arbiter::Opt::rest));
  CHECK_FALSE(cli.flags.text_of(arbiter::Opt::model_dir).has_value());
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
  CHECK(cli.flags.is_on(arbiter::Opt::reload));
  CHECK(*cli.flags.number_of(arbiter::Opt::graceful_timeout) == 5);
  CHECK(*cli.flags.number_of(arbiter::Opt::max_requests) == 100);
  CHECK(*cli.flags.number_of(arbiter::Opt::max_requests_jitter) == 10);
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

TEST_CASE("the environment follows docs/behaviour.md 1.3") {
  setenv("SERVER_PORT", "3535", 1);
  unsetenv("SEPERATE_HEALTH_ENDPOINT");
  unsetenv("AZUREML_MODEL_DIR");
  unsetenv("SERVER_VERSION_LOG_RESPONSE_ENABLED");
  unsetenv("AML_APP_ROOT");
  unsetenv("WORKER_COUNT");
  arbiter::Flags flags;
  flags.text[static_cast<int>(arbiter::Opt::entry_script)] = "sub/../score.py";
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
  flags.number[static_cast<int>(arbiter::Opt::port)] = 8000;
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

TEST_CASE("every flag of the options table is in the usage line and in --help") {
  std::string usage = arbiter::usage_text();
  std::string help = arbiter::help_text();
  CHECK(usage.rfind("usage: azmlinfsrv [-h] [--entry_script ENTRY_SCRIPT] [--model_dir MODEL_DIR]\n", 0) == 0);
  for (const arbiter::Option& o : arbiter::options()) {
    if (o.hidden || !o.flag) {
      if (o.flag) CHECK_THAT(usage, !Catch::Contains(std::string("[") + o.flag));
      continue;
    }
    INFO(o.flag);
    CHECK_THAT(usage, Catch::Contains(std::string("[") + o.flag));
    CHECK_THAT(help, Catch::Contains(std::string("\n  ") + o.flag));
  }
  // argparse's layout: help text from column 24, wrapped at 78.
  for (size_t start = 0, end; (end = help.find('\n', start)) != std::string::npos; start = end + 1) {
    std::string line = help.substr(start, end - start);
    if (line.rfind(std::string(24, ' '), 0) == 0) CHECK(line.size() <= 78);
  }
  // The reference's wording, from the table's defaults.
  CHECK_THAT(help, Catch::Contains("  --port PORT           The serving port of the server. Default is 5001.\n"));
  CHECK_THAT(help, Catch::Contains("SEPERATE_HEALTH_ENDPOINT=true. Default is 5000.\n"));
}

TEST_CASE("the one integer parser") {
  using arbiter::parse_integer;
  CHECK(parse_integer("42", 1, 100) == 42);
  CHECK(parse_integer(" 7 ", 1, 100) == 7);  // Python's int() allows blanks around
  CHECK(parse_integer("+3", 1, 100) == 3);
  CHECK(parse_integer("-3", -5, 100) == -3);
  CHECK_FALSE(parse_integer("0", 1, 100));
  CHECK_FALSE(parse_integer("101", 1, 100));
  CHECK_FALSE(parse_integer("", 1, 100));
  CHECK_FALSE(parse_integer("-", -5, 100));
  CHECK_FALSE(parse_integer("1e3", 1, 10000));
  CHECK_FALSE(parse_integer("12abc", 1, 100));
  CHECK_FALSE(parse_integer("99999999999999999999999", 1, INT64_MAX));
}

TEST_CASE("each integer flag takes its range, and refuses one past either end") {
  for (const arbiter::Option& o : arbiter::options()) {
    if (o.type != arbiter::Type::integer || !o.flag) continue;
    INFO(o.flag);
    std::string low = std::to_string(o.low), high = std::to_string(o.high);
    CHECK(parse({o.flag, low.c_str()}).outcome == arbiter::CommandLine::Outcome::run);
    CHECK(parse({o.flag, high.c_str()}).outcome == arbiter::CommandLine::Outcome::run);
    std::string below = std::to_string(o.low - 1), above = std::to_string(o.high + 1);
    CHECK(parse({o.flag, below.c_str()}).exit_code == 1);
    CHECK(parse({o.flag, above.c_str()}).exit_code == 1);
  }
  auto workers = parse({"--worker_count", "300"});
  CHECK(workers.exit_code == 1);
  CHECK_THAT(workers.err, Catch::Contains("argument --worker_count: invalid validate_worker_count value: '300' "
                                          "(expected an integer from 1 to 128"));
  CHECK(arbiter::option(arbiter::Opt::worker_count).high == worker::kMaxWorkers);
  CHECK(worker::kMaxWorkers * 2 <= worker::kMaxSlots);  // a reload's new generation finds slots
  CHECK_THAT(parse({"--port"}).err, Catch::Contains("argument --port: expected one argument"));
  CHECK_THAT(parse({"--port", "--rest"}).err, Catch::Contains("argument --port: expected one argument"));
  CHECK_THAT(parse({"--keep_alive_timeout_ms", "-5"}).err,
             Catch::Contains("argument --keep_alive_timeout_ms: invalid value: '-5'"));
  CHECK_THAT(parse({"--bogus", "x", "--port=8"}).err, Catch::Contains("unrecognized arguments: --bogus x\n"));
  CHECK(*parse({"--port", "8", "--port=9"}).flags.number_of(arbiter::Opt::port) == 9);  // the last one counts
}

TEST_CASE("the environment merge: the flag wins, a bad variable is refused with its range, else the default") {
  using arbiter::Opt;
  std::string error;
  unsetenv("GRACEFUL_TIMEOUT");
  CHECK(arbiter::resolve(arbiter::Flags{}, Opt::graceful_timeout, error) == 30);
  setenv("GRACEFUL_TIMEOUT", "12", 1);
  CHECK(arbiter::resolve(arbiter::Flags{}, Opt::graceful_timeout, error) == 12);
  CHECK(arbiter::resolve(parse({"--graceful_timeout", "4"}).flags, Opt::graceful_timeout, error) == 4);
  CHECK(error.empty());
  setenv("GRACEFUL_TIMEOUT", "long", 1);
  CHECK(arbiter::resolve(parse({"--graceful_timeout", "4"}).flags, Opt::graceful_timeout, error) == 4);
  CHECK(error.empty());  // a flag given: the variable is not read
  CHECK(arbiter::resolve(arbiter::Flags{}, Opt::graceful_timeout, error) == 30);
  CHECK(error ==
        "The environment variable GRACEFUL_TIMEOUT='long' is not valid: it is the graceful stop timeout in seconds. "
        "Set it to a whole number from 0 to 86400, unset it for the default 30, or pass --graceful_timeout.");
  unsetenv("GRACEFUL_TIMEOUT");

  setenv("WORKER_COUNT", "300", 1);
  error.clear();
  arbiter::resolve(arbiter::Flags{}, Opt::worker_count, error);
  CHECK_THAT(error, Catch::Contains("WORKER_COUNT='300'"));
  CHECK_THAT(error, Catch::Contains("from 1 to 128"));
  unsetenv("WORKER_COUNT");

  setenv("LIMIT_REQUEST_BODY", "10", 1);
  arbiter::Launch launch = arbiter::apply_flags_to_environment(parse({"--limit_request_line", "99"}).flags, "/tmp");
  CHECK(launch.error.empty());
  CHECK(launch.worker.limit_request_body == 10);
  CHECK(launch.worker.limit_request_line == 99);
  CHECK(launch.worker.limit_request_fields == 100);
  CHECK(std::string(getenv("LIMIT_REQUEST_LINE")) == "99");  // a flag is exported for the script to see
  unsetenv("LIMIT_REQUEST_BODY");
  unsetenv("LIMIT_REQUEST_LINE");
}
