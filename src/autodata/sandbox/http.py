"""A remote sandbox service with a SandboxFusion-style ``/run_code`` API.

SandboxFusion (https://github.com/bytedance/SandboxFusion; request and response models in
``sandbox/server/sandbox_api.py``, docs at https://bytedance.github.io/SandboxFusion/) runs code
in its own isolated environment: ``POST {url}/run_code`` with ``{"code", "language": "python",
"run_timeout", "memory_limit_MB", "files": {path: base64}}``; the answer is ``{"status":
"Success"|"Failed"|"SandboxError", "message", "run_result": {"status":
"Finished"|"TimeLimitExceeded"|"Error", "execution_time", "return_code", "stdout", "stderr"}}``.

We send the same runner the local sandboxes use as ``code``, with the solution and the tests as
``files`` (``solution.py``, ``tests.py``, placed in the run's working directory), and read the
runner's report line from ``run_result.stdout``, so passed/total, failures and stop reasons mean
the same thing whichever sandbox ran them. A ``SandboxError`` (or any HTTP failure) is an
``infra_error``: it says nothing about the solution and is never scored.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request

from autodata.sandbox.local import GRACE_SECONDS, RUNNER, _parse
from autodata.sandbox.types import Limits, SandboxExecutor, SandboxResult, SandboxUnavailable


class HttpSandboxExecutor(SandboxExecutor):
    """POSTs each run to ``{url}/run_code``; ``api_key_env`` names an environment variable whose value
    is sent as ``Authorization: Bearer …`` (a gateway in front of the service may want one)."""

    name = "http"

    def __init__(
        self,
        url: str,
        limits: Limits | None = None,
        *,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        workers: int = 2,
    ) -> None:
        super().__init__(limits, workers=workers)
        self.url = url.rstrip("/")
        if self.url.endswith("/run_code"):
            self.url = self.url[: -len("/run_code")]
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.isolation = f"remote sandbox service at {self.url}"

    def check(self) -> None:
        if self.api_key_env and not os.environ.get(self.api_key_env):
            raise SandboxUnavailable(f"sandbox.api_key_env names {self.api_key_env}, which is not set")

    def request_body(self, solution_code: str, tests_code: str, lim: Limits) -> dict[str, object]:
        spec = json.dumps({"code_dir": ".", "work": "autodata_work", "limits": lim.to_dict()})
        code = f"import sys\nsys.argv[1:] = [{spec!r}]\n" + RUNNER.read_text(encoding="utf-8")
        return {
            "code": code,
            "language": "python",
            "run_timeout": lim.wall_seconds + GRACE_SECONDS,
            "memory_limit_MB": -1,  # the runner's RLIMIT_AS bounds the tests; the service's own limit off
            "files": {
                "solution.py": base64.b64encode(solution_code.encode()).decode(),
                "tests.py": base64.b64encode(tests_code.encode()).decode(),
            },
        }

    def run(self, solution_code: str, tests_code: str, limits: Limits | None = None) -> SandboxResult:
        lim = limits or self.limits
        self.check()
        body = json.dumps(self.request_body(solution_code, tests_code, lim)).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        req = urllib.request.Request(self.url + "/run_code", data=body, headers=headers, method="POST")
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=max(self.timeout_s, lim.wall_seconds + 2 * GRACE_SECONDS)) as r:
                data = json.loads(r.read(8_000_000))
        except urllib.error.HTTPError as err:
            return SandboxResult.infra(f"the sandbox service answered HTTP {err.code}: {err.reason}", self.isolation)
        except (urllib.error.URLError, OSError, ValueError) as err:
            return SandboxResult.infra(f"the sandbox service at {self.url} failed: {err}", self.isolation)
        wall = round(time.monotonic() - start, 3)
        if not isinstance(data, dict):
            return SandboxResult.infra("the sandbox service sent something other than a JSON object", self.isolation)
        if data.get("status") == "SandboxError":
            return SandboxResult.infra(f"the sandbox service reported SandboxError: {data.get('message', '')}"[:500],
                                       self.isolation)  # fmt: skip
        run = data.get("run_result") or {}
        result = _parse(("\n" + str(run.get("stdout") or "")).encode(), self.isolation)
        if result is not None:
            result.resources["host_seconds"] = wall  # the request as the host saw it
            return result
        if run.get("status") == "TimeLimitExceeded":
            return SandboxResult(0, 0, stop_reason="time", stop_detail="the service's run_timeout passed",
                                 resources={"host_seconds": wall}, isolation=self.isolation)  # fmt: skip
        return SandboxResult(
            0,
            0,
            stop_reason="killed",
            stop_detail=f"the runner ended without a report (service status {run.get('status')!r}, "
            f"return code {run.get('return_code')!r})",
            resources={"host_seconds": wall},
            isolation=self.isolation,
            stderr_tail=str(run.get("stderr") or "")[-2000:],
        )
