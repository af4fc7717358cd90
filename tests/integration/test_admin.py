"""looped-admin and looped-fcgi start-up, against the session's store (no web server needed)."""

import os
import signal
import stat
import subprocess
import pytest

from looped_test.settings import ADMIN_BIN, DB_NAME, FCGI_BIN, MEMBERS, TEAMS


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["team"],
    ["team", "create"],
    ["team", "create", "newteam"],                      # --name missing
    ["team", "create", "Bad_Team", "--name", "x"],      # TEAM_ID pattern
    ["team", "create", "-leading-dash", "--name", "x"],
    ["team", "create", "a" * 64, "--name", "x"],        # 64 > 63 characters
    ["user"],
    ["user", "add"],
    ["user", "add", "has:colon"],
    ["user", "add", "has space"],
    ["member", "add", "acme", "owner"],                 # role missing
    ["member", "add", "acme", "owner", "BOSS"],         # unknown role
    ["member", "remove", "acme"],
    ["member", "list"],
    ["init", "extra"],
    ["team", "list", "extra"],
    ["policy", "show"],
    ["policy", "show", "Bad_Team"],
    ["leaks", "pending", "extra"],
])
def test_bad_arguments_exit_2_with_message(stack, argv):
    r = stack.admin(*argv)
    assert r.returncode == 2, f"{argv}: exit {r.returncode}, stderr {r.stderr!r}"
    assert r.stderr.strip(), f"{argv}: no message on stderr"


def test_unknown_option_exit_2(stack):
    r = stack.admin("--frobnicate", "init", config=False)
    assert r.returncode == 2 and r.stderr.strip()


def test_missing_config_file_fails(stack, tmp_path):
    r = subprocess.run([str(ADMIN_BIN), "--config", str(tmp_path / "nope.conf"), "team", "list"],
                       capture_output=True, text=True, timeout=30, env=stack.base_env())
    assert r.returncode != 0 and r.stderr.strip()


def test_init_is_idempotent(stack, mongo):
    _, db = mongo
    stack.admin_ok("init")
    before = {c: sorted(i["name"] for i in db[c].list_indexes()) for c in db.list_collection_names()}
    r = stack.admin("init")
    assert r.returncode == 0, r.stderr
    after = {c: sorted(i["name"] for i in db[c].list_indexes()) for c in db.list_collection_names()}
    assert before == after
    # design.md §4: the unique index on api_keys.hash exists after init.
    idx = [i for i in db["api_keys"].list_indexes() if dict(i["key"]) == {"hash": 1}]
    assert idx and idx[0].get("unique") is True, list(db["api_keys"].list_indexes())
    # The seed survived.
    assert stack.admin_ok("team", "list").stdout.count("\n") == len(TEAMS)


def test_init_creates_pepper_0600(stack, tmp_path):
    pepper = tmp_path / "secrets" / "pepper"  # parent directory missing on purpose
    env = {"LOOPED_MONGODB_URI": stack.store.uri, "LOOPED_DB": DB_NAME + "_pepper",
           "LOOPED_PEPPER_FILE": str(pepper)}
    r = stack.admin("init", config=False, env=env)
    assert r.returncode == 0, r.stderr
    st = pepper.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_size >= 32
    assert stat.S_IMODE(pepper.parent.stat().st_mode) == 0o700, oct(pepper.parent.stat().st_mode)
    content = pepper.read_bytes()
    # Re-running keeps the existing pepper (every stored key hash depends on it).
    r = stack.admin("init", config=False, env=env)
    assert r.returncode == 0, r.stderr
    assert pepper.read_bytes() == content
    # The pepper never appears in the output.
    assert content.hex() not in r.stdout + r.stderr


def test_team_user_member_lists(stack):
    teams = dict(line.split("\t") for line in stack.admin_ok("team", "list").stdout.splitlines())
    assert teams == TEAMS
    users = set(stack.admin_ok("user", "list").stdout.split())
    assert {u for _, u, _ in MEMBERS} <= users
    members = dict(line.split("\t") for line in stack.admin_ok("member", "list", "acme").stdout.splitlines())
    assert members == {u: role for t, u, role in MEMBERS if t == "acme"}


def test_duplicates_and_role_update(stack):
    r = stack.admin("team", "create", "acme", "--name", "Again")
    assert r.returncode == 1 and "already exists" in r.stderr, (r.returncode, r.stderr)
    r = stack.admin("user", "add", "owner")
    assert r.returncode == 1 and "already exists" in r.stderr, (r.returncode, r.stderr)
    stack.admin_ok("team", "create", "initech", "--name", "Initech")
    stack.admin_ok("user", "add", "peter")
    stack.admin_ok("member", "add", "initech", "peter", "MEMBER")
    stack.admin_ok("member", "add", "initech", "peter", "ADMIN")   # updates the role
    assert stack.admin_ok("member", "list", "initech").stdout == "peter\tADMIN\n"
    stack.admin_ok("member", "remove", "initech", "peter")
    assert stack.admin_ok("member", "list", "initech").stdout == ""


def test_member_of_unknown_team_or_user_fails(stack):
    r = stack.admin("member", "add", "no-such-team", "owner", "MEMBER")
    assert r.returncode == 1 and r.stderr.strip()
    r = stack.admin("member", "add", "acme", "no-such-user", "MEMBER")
    assert r.returncode == 1 and r.stderr.strip()


def test_admin_store_down_fails_cleanly(stack):
    env = {"LOOPED_MONGODB_URI": "mongodb://127.0.0.1:1/", "LOOPED_DB": DB_NAME,
           "LOOPED_PEPPER_FILE": str(stack.pepper), "LOOPED_DB_TIMEOUT_MS": "300"}
    r = stack.admin("team", "list", config=False, env=env, timeout=30)
    assert r.returncode == 1 and r.stderr.strip(), (r.returncode, r.stderr)


# ---------------------------------------------------------------------------------------------
# looped-fcgi refuses to start with a bad setting: one clear line, exit 1


def run_fcgi(stack, tmp_path, env_over, args=()):
    env = stack.base_env()
    env.update(stack.app_env)
    env.update(env_over)
    sock = tmp_path / "s.sock"
    p = subprocess.Popen([str(FCGI_BIN), "--listen", f"unix:{sock}", "--workers", "1", *args], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # its own session: the supervisor and its workers
        out, err = p.communicate(timeout=10)
        pytest.fail(f"looped-fcgi started despite {env_over} (killed after 15 s); stderr: {err[-2000:]}")
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.parametrize("name,value", [
    ("LOOPED_MAX_BODY", "abc"),
    ("LOOPED_MAX_BODY", "-1"),
    ("LOOPED_LOG_LEVEL", "chatty"),
    ("LOOPED_WORKERS", "0"),
    ("LOOPED_DB_TIMEOUT_MS", "99999999999999999999"),
    ("LOOPED_PEPPER_FILE", "/nonexistent/pepper"),
    ("LOOPED_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33"),
    ("LOOPED_TRUSTED_PROXIES", "proxy.example.com"),
])
def test_fcgi_bad_setting_one_line_exit_1(stack, tmp_path, name, value):
    r = run_fcgi(stack, tmp_path, {name: value})
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"looped-fcgi: {name}:"), r.stderr


def test_fcgi_short_pepper_refused(stack, tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"x" * 31)
    short.chmod(0o600)
    r = run_fcgi(stack, tmp_path, {"LOOPED_PEPPER_FILE": str(short)})
    assert r.returncode == 1 and "LOOPED_PEPPER_FILE" in r.stderr, r.stderr
    assert "x" * 31 not in r.stderr


def test_fcgi_config_file_overrides_environment(stack, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("# comment\nLOOPED_MAX_BODY=notanumber\n")
    r = run_fcgi(stack, tmp_path, {}, ["--config", str(conf)])
    assert r.returncode == 1 and "LOOPED_MAX_BODY" in r.stderr, r.stderr
