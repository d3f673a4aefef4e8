"""`pio test` runner for the offline environments: runs each test program in QEMU
(boards whose manifest names `emulator.qemu_machine`) or as a host process
(native), always under a timeout, and reads the lines of test/lpn_check.c.

PlatformIO's own runners would fetch Unity from its registry and expect an
uploader; this one needs neither.
"""
import os
import re
import subprocess

import click
from platformio.test.result import TestCase, TestStatus
from platformio.test.runners.base import TestRunnerBase

RESULT_LINE = re.compile(r"^lpn-test:(PASS|FAIL) (\S+)(?: (.*))?$")
END_LINE = re.compile(r"^lpn-test:END (\d+)$")
RUN_TIMEOUT_SECONDS = 60


class CustomTestRunner(TestRunnerBase):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ended = False

    def stage_testing(self):
        if self.options.without_testing:
            return
        command = self._command()
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired as exc:
            self._error(f"{' '.join(command)} still running after {RUN_TIMEOUT_SECONDS} s", exc.output)
            return
        self.on_testing_data_output(done.stdout + b"\n")
        if not self._ended:
            self._error(f"the test program ended (status {done.returncode}) without its END line", done.stdout)
        elif done.returncode != self.test_suite.get_status_nums(TestStatus.FAILED):
            self._error(f"exit status {done.returncode} disagrees with the reported failures", done.stdout)

    def on_testing_line_output(self, line):
        super().on_testing_line_output(line)
        text = line.strip()
        result = RESULT_LINE.match(text)
        if result:
            status = TestStatus.PASSED if result.group(1) == "PASS" else TestStatus.FAILED
            self.test_suite.add_case(TestCase(name=result.group(2), status=status, message=result.group(3)))
        elif END_LINE.match(text):
            self._ended = True

    def _error(self, message, output):
        text = (output or b"").decode("utf-8", "replace")
        click.secho(message, fg="red", err=True)
        self.test_suite.add_case(
            TestCase(name=f"{self.test_suite.env_name}:run", status=TestStatus.ERRORED, message=message, stdout=text)
        )

    def _command(self):
        env_section = f"env:{self.test_suite.env_name}"
        build_dir = os.path.join(self.project_config.get("platformio", "build_dir"), self.test_suite.env_name)
        board = self.project_config.get(env_section, "board", None)
        if not board:
            return [os.path.join(build_dir, "program")]
        machine = self.platform.board_config(board).get("emulator.qemu_machine", None)
        if not machine:
            raise RuntimeError(f"board {board} names no QEMU machine, so its tests cannot run here")
        return [
            "qemu-system-arm",
            "-M", machine,
            "-nographic",
            "-monitor", "none",
            "-serial", "stdio",
            # The test program ends the run, with its failure count, by semihosting.
            "-semihosting-config", "enable=on,target=native",
            "-kernel", os.path.join(build_dir, "firmware.elf"),
        ]
