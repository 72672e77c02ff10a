"""Run the README's API walk-through as written, against a running `make demo`.

The shell block of README.md that signs in (`/api/v1/auth/token`) is taken from the README
itself, so the README cannot drift from what works. Each command runs as written, in the
repository, with the variables the commands before it set; the only substitution is the
`kiln_dev_...` placeholder, replaced by the device credential the command before printed.
Every HTTP answer must be 2xx and every answer that is whole JSON must parse; a few answers are
checked further by the route they come from. Exits 1 at the first step that fails, naming it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "kiln_dev_..."
CREDENTIAL = re.compile(r"\bkiln_dev_[A-Za-z0-9_-]{16,}")
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)=\$\(", re.DOTALL)
STATUS = re.compile(r"^kiln-gate-http (\d{3})$", re.MULTILINE)
# curl as the README calls it, also reporting each answer's status on stderr.
PREAMBLE = "curl() { command curl --write-out '%{stderr}kiln-gate-http %{http_code}\\n' \"$@\"; }\n"


class StepFailed(Exception):
    pass


def readme_steps(readme: str) -> list[str]:
    """The commands of the README's sign-in block, continuation lines joined."""
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    chosen = [b for b in blocks if "/api/v1/auth/token" in b]
    if len(chosen) != 1:
        raise StepFailed(f"README.md should have one sh block that signs in, found {len(chosen)}")
    steps: list[str] = []
    pending = ""
    for line in chosen[0].splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            steps.append(command)
    return steps


def run_step(command: str, variables: dict[str, str]) -> tuple[str, list[int]]:
    """The command's output and the HTTP status of each request it made."""
    name = ASSIGNMENT.match(command)
    script = PREAMBLE + command + (f'\nprintf %s "${name.group(1)}"' if name else "")
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    statuses = [int(s) for s in STATUS.findall(done.stderr)]
    errors = STATUS.sub("", done.stderr).strip()
    if done.returncode != 0:
        raise StepFailed(f"exit status {done.returncode}: {errors or done.stdout[-500:]}")
    if name:
        if not done.stdout:
            raise StepFailed(f"{name.group(1)} came out empty: {errors}")
        variables[name.group(1)] = done.stdout
    return done.stdout, statuses


def check(command: str, output: str, statuses: list[int]) -> str:
    """What the step showed, or StepFailed."""
    if "curl" in command and not statuses:
        raise StepFailed("curl made no request")
    if any(not 200 <= s < 300 for s in statuses):
        raise StepFailed(f"HTTP {statuses}: {output[:300]}")
    body = output.strip()
    whole = body if "| head -c" not in command else None
    if whole and whole[0] in "{[":
        try:
            answer = json.loads(whole)
        except ValueError as err:
            raise StepFailed(f"not JSON ({err}): {whole[:300]}") from None
        buckets = answer.get("buckets", []) if isinstance(answer, dict) else []
        if "/history/aggregate" in command and all(b.get("avg") is None for b in buckets):
            raise StepFailed(f"no bucket has a value: {whole[:300]}")
        if "/ingest" in command and not answer.get("accepted"):
            raise StepFailed(f"ingest accepted nothing: {whole[:300]}")
    if "/values/latest?prefix=" in command:
        prefix = command.split("prefix=", 1)[1].split("'", 1)[0]
        if f'"{prefix}/' not in body:
            raise StepFailed(f"no value under {prefix}: {body[:300]}")
    return f"HTTP {','.join(map(str, statuses))}" if statuses else "ok"


def main() -> int:
    try:
        steps = readme_steps((ROOT / "README.md").read_text())
        if not any(PLACEHOLDER in s for s in steps):
            raise StepFailed(f"the README's block no longer uses {PLACEHOLDER}")
    except StepFailed as err:
        print(f"readme-steps: {err}", file=sys.stderr)
        return 1
    variables: dict[str, str] = {}
    credential: str | None = None
    for number, written in enumerate(steps, 1):
        command = written
        if credential is not None:  # before one is printed, the placeholder is only a comment
            command = command.replace(PLACEHOLDER, credential)
        try:
            output, statuses = run_step(command, variables)
            shown = check(command, output, statuses)
        except (StepFailed, subprocess.TimeoutExpired) as err:
            print(f"readme-steps: step {number} FAILED: {written}\n  {err}", file=sys.stderr)
            return 1
        found = CREDENTIAL.search(output)
        if found:
            credential = found.group(0)
        print(f"readme-steps: step {number} {shown}: {written[:90]}")
    print(f"readme-steps: all {len(steps)} steps of the README's API walk-through passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
