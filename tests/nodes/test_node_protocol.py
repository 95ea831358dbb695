"""The node programs' line protocol (apps/nodes/remote/nodelib.py): text a
site, a repository or a file name chose can never start a line of its own,
and the panel takes only a program's last line as its outcome."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from apps.jobs.errors import JobError
from apps.nodes.remote_exec import ProgramOutput

NODE_LIB = Path(settings.BASE_DIR) / "apps" / "nodes" / "remote"
FORGED = '\nRESULT {"release": "forged"}\r\nERROR unsafe_path 1 forged\u2028RESULT {"release": "forged"}'


def run_node_program(tmp_path, body: str) -> list[str]:
    """A node program made of ``body`` (the handler), run as the panel runs them."""
    program = tmp_path / "program.py"
    program.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(NODE_LIB)!r})\n"
        "from nodelib import NodeError, info, main, step\n"
        f"FORGED = {FORGED!r}\n"
        f"{body}\n"
        "main(handler)\n"
    )
    done = subprocess.run([sys.executable, str(program)], input="{}", capture_output=True, text=True, timeout=30,
                          check=False)
    # The panel splits the stream at "\n" only (apps/nodes/ssh.py).
    return done.stdout.rstrip("\n").split("\n")


def parse(lines: list[str]) -> ProgramOutput:
    output = ProgramOutput()
    for line in lines:
        output.line(line)
    return output


def test_a_failing_programs_messages_cannot_forge_a_result(tmp_path):
    lines = run_node_program(tmp_path, (
        "def handler(params):\n"
        "    step('unpack ' + FORGED)\n"
        "    info('file name: evil' + FORGED)\n"
        "    raise NodeError('wordpress_failed', 'WordPress: boom' + FORGED)\n"
    ))
    assert [line.split(" ", 1)[0] for line in lines] == ["STEP", "INFO", "ERROR"], lines
    assert all(not line.startswith("RESULT") for line in lines)
    error = parse(lines).error()
    assert error.code == "wordpress_failed" and not error.retryable
    assert error.message.startswith("WordPress: boom\\nRESULT ")
    assert "\n" not in error.message and "\r" not in error.message and "\u2028" not in error.message


def test_a_succeeding_programs_messages_cannot_forge_an_error_or_result(tmp_path):
    lines = run_node_program(tmp_path, (
        "def handler(params):\n"
        "    info('git said: ' + FORGED + '\\x1b[2J\\u202e')\n"
        "    return {'release': 'real', 'note': FORGED}\n"
    ))
    assert [line.split(" ", 1)[0] for line in lines] == ["INFO", "RESULT"], lines
    assert "\\x1b[2J\\u202e" in lines[0]
    output = parse(lines)
    assert output.error() is None
    assert output.result("program.py") == {"release": "real", "note": FORGED}


def test_an_unknown_error_code_and_long_messages_stay_on_one_bounded_line(tmp_path):
    lines = run_node_program(tmp_path, (
        "def handler(params):\n"
        "    raise NodeError('Bad Code' + FORGED, 'x' * 10000 + FORGED)\n"
    ))
    assert len(lines) == 1 and lines[0].startswith("ERROR remote_step_failed 0 Bad Code\\nRESULT")
    assert len(lines[0]) < 2100 and lines[0].endswith(" [...]")


def test_only_the_last_line_is_the_outcome():
    # What a child process sharing the program's stdout could print: not the last line, so nothing.
    output = parse(["INFO start", 'RESULT {"release": "forged"}', "ERROR unsafe_path 0 forged", "INFO more",
                    'RESULT {"release": "real"}'])
    assert output.error() is None and output.result("p") == {"release": "real"}

    output = parse(['RESULT {"release": "forged"}', "ERROR archive_invalid 0 refused"])
    assert output.error().code == "archive_invalid"

    # After an ERROR the program exits non-zero: whatever follows, run_program fails the job
    # (remote_step_failed from the exit status), as the ERROR line is no longer the last.
    output = parse(["ERROR archive_invalid 0 refused", 'RESULT {"release": "forged"}'])
    assert output.error() is None

    for lines in ([], ['RESULT {"release": "x"}', "INFO after"], ["RESULT [1]"], ["RESULT {not json"]):
        with pytest.raises(JobError) as failed:
            parse(lines).result("env_deploy.py")
        assert failed.value.code == "remote_step_failed", lines


def test_the_result_line_escapes_every_separator(tmp_path):
    lines = run_node_program(tmp_path, "def handler(params):\n    return {'text': '\\u2028\\u2029\\x85\\n'}\n")
    assert lines == ['RESULT {"text": "\\u2028\\u2029\\u0085\\n"}']
    assert json.loads(lines[0][len("RESULT "):]) == {"text": "\u2028\u2029\x85\n"}


def test_output_someone_else_controls_is_kept_bounded_and_its_processes_cannot_outstay(tmp_path):
    import time

    from apps.nodes.remote.nodelib import run_bounded

    flood = ("import sys; sys.stdout.write('a' * 5_000_000 + 'END'); sys.stderr.write('e' * 100_000)")
    done = run_bounded([sys.executable, "-c", flood], timeout=30, keep_stdout=1000, keep_stderr=10)
    assert (len(done.stdout), done.stdout[-3:], done.stderr, done.returncode) == (1000, "END", "e" * 10, 0)

    # A child left behind holding the pipes does not keep the caller waiting, nor does it live on.
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    done = run_bounded(["sh", "-c", f"sleep 300 & echo $! > {pid_file}; echo answer"], timeout=30)
    assert done.stdout == "answer\n" and time.monotonic() - started < 20
    assert _gone(int(pid_file.read_text()))

    # On timeout the whole process group goes, not only the direct child.
    pid_file.unlink()
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded(["sh", "-c", f"sleep 300 & echo $! > {pid_file}; sleep 300"], timeout=1)
    assert _gone(int(pid_file.read_text()))

    # As another account: its own ids, no supplementary groups of root's.
    done = run_bounded(["id"], timeout=30, user=65534, group=65534)
    assert done.stdout.startswith("uid=65534(") and "groups=65534(" in done.stdout and "0(root)" not in done.stdout


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody reaped yet (a container's init may not)."""
    import time

    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False
