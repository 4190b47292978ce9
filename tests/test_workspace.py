"""The workspace cannot be corrupted: one writer at a time (stale locks and leftovers of killed runs cleared), the
virtual lab never overwrites data it did not write, `matmcl run` never synthesizes over a lab's raw folder, and the
CLI's options and errors behave."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from matmcl import cli
from matmcl.stages.context import StageContext
from matmcl.workspace_lock import WorkspaceBusyError, remove_leftovers, workspace_lock

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SMOKE = ["--params", str(PARAMS), "--profile", "smoke", "--quiet"]


def hold_lock_in_child(root: Path) -> subprocess.Popen:
    """A second process that takes the workspace lock and sleeps (until killed)."""
    code = textwrap.dedent(f"""
        import time
        from matmcl.workspace_lock import workspace_lock
        with workspace_lock({str(root)!r}):
            print("locked", flush=True)
            time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path, capsys):
    child = hold_lock_in_child(tmp_path)
    try:
        start = time.perf_counter()
        with pytest.raises(WorkspaceBusyError, match=f"pid {child.pid}"):
            with workspace_lock(tmp_path):
                pass
        assert time.perf_counter() - start < 5
        assert cli.main([*SMOKE, "--workspace", str(tmp_path), "synth"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by pid {child.pid}" in err and "Traceback" not in err
    finally:
        child.kill()
        child.wait()


def test_a_stale_lock_of_a_killed_process_is_cleared_with_its_leftovers(tmp_path, caplog):
    processed = tmp_path / "data/processed"
    (processed / ".patches.abc123.tmp").mkdir(parents=True)
    (processed / ".patches.abc123.tmp" / "F0001_f0_p0.png").write_bytes(b"half")
    (processed / ".table.parquet.x1.tmp").write_bytes(b"half")
    (tmp_path / "data/.processed.old").mkdir()
    (processed / "table.parquet").write_bytes(b"finished")
    child = hold_lock_in_child(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    ctx = StageContext.load(tmp_path, PARAMS, "smoke")
    with ctx.locked():
        pass
    assert sorted(p.name for p in processed.iterdir()) == ["table.parquet"]
    assert not (tmp_path / "data/.processed.old").exists()
    assert "stale workspace lock" in caplog.text and f"pid {child.pid}" in caplog.text


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    with workspace_lock(tmp_path), workspace_lock(tmp_path):
        pass
    child = hold_lock_in_child(tmp_path)  # would block forever if this process still held it
    child.kill()
    child.wait()


def test_leftover_removal_never_touches_ordinary_files(tmp_path):
    (tmp_path / "sub").mkdir()
    kept = [tmp_path / "sub/a.tmp", tmp_path / ".hidden", tmp_path / "sub/.b.tmp.png"]
    for path in kept:
        path.write_text("x")
    assert remove_leftovers([tmp_path]) == []
    assert all(path.exists() for path in kept)


def test_synth_refuses_a_folder_with_a_file_it_did_not_write(tmp_path, capsys):
    assert cli.main([*SMOKE, "--workspace", str(tmp_path), "synth", "--n-films", "2"]) == 0
    lab = tmp_path / "data/virtual_lab"
    notes = lab / "sem/my_notes.txt"
    notes.write_text("a user's file")
    assert cli.main([*SMOKE, "--workspace", str(tmp_path), "synth", "--n-films", "2"]) == 2
    assert "sem/my_notes.txt" in capsys.readouterr().err
    assert notes.read_text() == "a user's file"
    notes.unlink()
    assert cli.main([*SMOKE, "--workspace", str(tmp_path), "synth", "--n-films", "3"]) == 0
    assert len(pd.read_csv(lab / "conditions.csv")) == 3


def test_main_job_on_a_labs_own_folder_never_synthesizes(tmp_path):
    lab_data = tmp_path / "data/raw"
    assert cli.main([*SMOKE, "--workspace", str(tmp_path), "synth", "--out", "data/raw"]) == 0
    (lab_data / "manifest.json").unlink()  # now it is a lab's folder: nothing says the virtual lab wrote it
    (lab_data / "notebook.txt").write_text("a user's file")
    before = {p.relative_to(lab_data): p.read_bytes() for p in lab_data.rglob("*") if p.is_file()}
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text().replace("  raw_dir: data/virtual_lab", "  raw_dir: data/raw"))
    argv = ["--params", str(params), "--profile", "smoke", "--quiet", "--workspace", str(tmp_path)]
    assert cli.main([*argv, "run", "--data-only"]) == 0
    after = {p.relative_to(lab_data): p.read_bytes() for p in lab_data.rglob("*") if p.is_file()}
    assert after == before
    assert not (tmp_path / "data/virtual_lab").exists()
    timing = json.loads((tmp_path / "reports/timing.json").read_text())["seconds"]
    assert "synth" not in timing and "lab_report" not in timing and "tables" in timing


def test_global_options_are_accepted_after_the_subcommand():
    parser = cli.build_parser()
    before = parser.parse_args(["--profile", "smoke", "--workspace", "w", "run"])
    after = parser.parse_args(["run", "--profile", "smoke", "--workspace", "w"])
    assert (after.profile, after.workspace) == (before.profile, before.workspace) == ("smoke", "w")
    both = parser.parse_args(["--profile", "paper", "run", "--quiet"])
    assert (both.profile, both.quiet, both.workspace) == ("paper", True, ".")


@pytest.mark.parametrize("argv", [["run", "--skip-synt"], ["--prof", "smoke", "run"], ["synth", "--n-film", "3"]])
def test_abbreviated_options_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and ("unrecognized arguments" in err or "invalid choice: 'smoke'" in err)


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root ignores permissions")
def test_an_unwritable_workspace_is_one_line_naming_the_path(tmp_path):
    lab = tmp_path / "data/virtual_lab"
    lab.parent.mkdir(parents=True)
    (tmp_path / "data").chmod(0o555)
    command = [sys.executable, "-m", "matmcl.cli", *SMOKE, "--workspace", str(tmp_path), "synth"]
    if os.geteuid() == 0:  # drop root's rights so the permission bits apply
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        tmp_path.chmod(0o777)
        (tmp_path / ".matmcl").mkdir(mode=0o777)
        (tmp_path / ".matmcl").chmod(0o777)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        (tmp_path / "data").chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
    assert "Permission denied" in done.stderr and str(tmp_path / "data") in done.stderr


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert cli.main(["--quiet", "--workspace", str(tmp_path), "tables", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
