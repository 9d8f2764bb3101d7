"""The cluster's own word for why a run ended, and whether the run was lost.

A run is *lost* when it never got to test its idea: the scheduler preempted it, its node failed,
an administrator cancelled it, the Ray worker or node under it died. A lost run is no verdict on
the idea; the preempted and node-failure cases are worth running again (`Ending.retry`). A run
ended by its own doing (its exit code, a time limit it ran into, the memory it took) is not lost.

Slurm's state is read with `scontrol show job` (the controller keeps a finished job for
MinJobAge seconds) and, where accounting exists, `sacct`, which also names who cancelled a job.
Ray's is read from the exception a task's generator raised and from `ray.nodes()`.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass


SLURM_CALL_TIMEOUT_S = 10.0

# JobState values of a job that will not run again by itself
SLURM_FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL",
               "OUT_OF_MEMORY", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
# ...and of one that runs, or will run, again (a requeue comes back as PENDING)
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING",
                 "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
# slurmstepd's note in a job's stderr: "*** JOB 12 ON node1 CANCELLED AT 2024-01-01T00:00:00 DUE TO PREEMPTION ***"
STEPD_NOTE = re.compile(r"\*\*\* JOB (\d+) ON (\S+) CANCELLED AT (\S+)(?: DUE TO ([A-Z ]+?))? \*\*\*")




@dataclass
class Ending:
    """How the cluster ended a run: the crash reason to record, lost or not, worth a retry or not."""

    reason: str
    scheduler_reason: str
    lost: bool
    retry: bool


@dataclass
class SlurmJobState:
    """What Slurm says about a job now."""

    state: str              # JobState, e.g. "RUNNING", "CANCELLED"
    reason: str = ""        # Reason, e.g. "BeginTime", "JobHeldAdmin", "None"
    restarts: int = 0       # how often Slurm requeued it
    exit_code: str = ""     # "0:15": exit status and signal
    nodes: str = ""
    cancelled_by: str = ""  # the uid that cancelled it, known only with accounting

    @property
    def final(self) -> bool:
        return self.state in SLURM_FINAL

    @property
    def requeue_pending(self) -> bool:
        """Slurm put the job back in the queue (requeue, preemption in REQUEUE mode, node failure)."""
        return self.restarts > 0 and self.state in {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"}


class SlurmUnavailable(Exception):
    """The Slurm controller did not answer (restarting, or this machine lost its connection)."""


def slurm_job_state(job_id: str) -> SlurmJobState | None:
    """Returns the job's state from scontrol (sacct once the controller forgot it), or None if
    Slurm does not know the job; raises SlurmUnavailable when the controller does not answer."""
    state = _scontrol(job_id)
    if state is None or (state.state == "CANCELLED" and not state.cancelled_by):
        accounted = _sacct(job_id)
        if accounted is not None:
            if state is None:
                return accounted
            state.cancelled_by = accounted.cancelled_by
    return state


def slurm_cancel(job_id: str) -> bool:
    """Asks Slurm to cancel a job; returns True when scancel took the request."""
    return _run(["scancel", str(job_id)])[0] == 0


def _run(args: list[str]) -> tuple[int, str, str]:
    """Runs a Slurm command; returns (exit status, stdout, stderr), status 127 when it is missing."""
    if shutil.which(args[0]) is None:
        return 127, "", f"{args[0]} not found"
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=SLURM_CALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, "", f"{args[0]}: {exc}"
    return done.returncode, done.stdout, done.stderr


def _scontrol(job_id: str) -> SlurmJobState | None:
    status, text, error = _run(["scontrol", "show", "job", "-o", str(job_id)])
    if status != 0:
        if "invalid job id" in error.lower():  # finished more than MinJobAge ago, or never known
            return None
        raise SlurmUnavailable((error.strip().splitlines() or [f"scontrol exit status {status}"])[-1])
    if not text.strip():
        return None
    fields = dict(re.findall(r"(\w+)=(\S*)", text.splitlines()[0]))
    if "JobState" not in fields:
        return None
    restarts = fields.get("Restarts", "0")
    return SlurmJobState(fields["JobState"], fields.get("Reason", ""), int(restarts) if restarts.isdigit() else 0,
                         fields.get("ExitCode", ""), fields.get("NodeList", ""))


def _sacct(job_id: str) -> SlurmJobState | None:
    """Returns the job's state from accounting ("CANCELLED by 1000"), or None where there is none."""
    status, text, _ = _run(["sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", "State,ExitCode,NodeList"])
    if status != 0 or not text.strip():
        return None
    state, exit_code, nodes = (text.strip().splitlines()[0].split("|") + ["", ""])[:3]
    words = state.split()
    by = words[2] if len(words) >= 3 and words[1] == "by" else ""
    return SlurmJobState(words[0].rstrip("+") if words else "", exit_code=exit_code, nodes=nodes, cancelled_by=by)


def stepd_cause(stderr_text: str) -> str:
    """Returns the cause slurmstepd wrote in the job's stderr ("PREEMPTION", "TIME LIMIT", "NODE
    FAILURE"...), "cancelled" for a plain cancel, or "" when it wrote none."""
    notes = STEPD_NOTE.findall(stderr_text)
    if not notes:
        return ""
    return notes[-1][3] or "cancelled"


def slurm_ending(state: SlurmJobState | None, job_id: str, cause: str = "") -> Ending | None:
    """Returns how Slurm ended job `job_id`, or None when the job ended by itself (its own outcome
    stands: COMPLETED, FAILED) or nothing is known."""
    if state is None:
        return None
    name = state.state
    if name == "CANCELLED":  # slurmstepd's note tells a preemption or time limit from a plain cancel
        name = {"PREEMPTION": "PREEMPTED", "TIME LIMIT": "TIMEOUT", "NODE FAILURE": "NODE_FAIL"}.get(cause, name)
    where = f" on {state.nodes}" if state.nodes and state.nodes != "(null)" else ""
    if name == "CANCELLED":
        by = f" by {state.cancelled_by}" if state.cancelled_by else ""
        said = f"CANCELLED{by}"
        who = f"uid {state.cancelled_by}" if by else "scancel or an administrator (no accounting here says who)"
        # a person asked for this: running it again would undo their cancel
        return Ending(f"cancelled by the scheduler: slurm job {job_id} {said}{where} ({who})", said, True, False)
    if name == "PREEMPTED":
        return Ending(f"preempted: slurm job {job_id} PREEMPTED{where}", "PREEMPTED", True, True)
    if name in ("NODE_FAIL", "BOOT_FAIL"):
        return Ending(f"node failure: slurm job {job_id} {name}{where}", name, True, True)
    if name == "TIMEOUT":
        return Ending(f"timeout: slurm job {job_id} reached its Slurm time limit (TIMEOUT){where}", name, False, False)
    if name == "OUT_OF_MEMORY":
        return Ending(f"out of memory: slurm job {job_id} OUT_OF_MEMORY{where}", name, False, False)
    if name == "DEADLINE":
        return Ending(f"slurm job {job_id} passed its deadline before it could run (DEADLINE)", name, True, False)
    if name in ("REVOKED", "SPECIAL_EXIT"):
        return Ending(f"slurm job {job_id} {name}{where}", name, True, False)
    return None


def slurm_requeue_note(state: SlurmJobState, job_id: str, cause: str = "") -> str:
    """Returns the lost-attempt line for a job Slurm put back in its queue."""
    why = {"PREEMPTION": "preempted", "NODE FAILURE": "node failure", "TIME LIMIT": "time limit"}.get(cause, "")
    return f"requeued by the scheduler: slurm job {job_id} restart {state.restarts}" + (f" ({why})" if why else "")


def ray_ending(exc: BaseException, node_id: str = "", node_alive: bool | None = None) -> Ending:
    """Returns how Ray ended a task whose generator raised `exc` (not a cancel), given whether the
    node the run was on is still alive (None: unknown)."""
    import ray.exceptions as rex
    node = f"ray node {node_id[:8]}" if node_id else "its ray node"
    text = _first_line(exc)
    if isinstance(exc, rex.OutOfMemoryError):
        return Ending(f"out of memory: Ray's memory monitor killed the worker on {node} ({text})",
                      "OutOfMemoryError", False, False)
    if isinstance(exc, rex.NodeDiedError) or node_alive is False:
        return Ending(f"node lost: {node} died mid-run ({text})", f"{node} died", True, True)
    if isinstance(exc, (rex.WorkerCrashedError, rex.LocalRayletDiedError, rex.RayActorError, rex.OwnerDiedError,
                        rex.ObjectLostError, rex.RaySystemError)):
        return Ending(f"worker lost on {node}: {text}", f"ray worker died on {node}", True, True)
    if isinstance(exc, rex.RayTaskError):  # the task body itself failed on the worker (not the run)
        return Ending(f"executor error on {node}: {text}", "", False, False)
    return Ending(f"worker lost on {node}: {text}", f"ray error on {node}", True, True)


def ray_node_alive(node_id: str) -> bool | None:
    """Returns whether Ray's GCS holds `node_id` alive, or None when it cannot be asked."""
    if not node_id:
        return None
    try:
        import ray
        for node in ray.nodes():
            if node.get("NodeID") == node_id:
                return bool(node.get("Alive"))
    except Exception:
        return None
    return False


def oom_kill_count(pid: int | str = "self") -> int | None:
    """Returns how many processes the kernel's OOM killer has killed in the memory cgroup of
    `pid` (cgroup v2 `memory.events`, v1 `memory.oom_control`), or None where it cannot be read.

    Read before and after a run: a run that died of SIGKILL while the count rose was killed for
    memory; without such evidence a SIGKILL is only "killed from outside"."""
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            entries = [line.rstrip("\n").split(":", 2) for line in fh]
    except OSError:
        return None
    for _, controllers, path in entries:
        if controllers == "":  # v2: one unified hierarchy
            candidates = [f"/sys/fs/cgroup{path}/memory.events"]
        elif "memory" in controllers.split(","):
            candidates = [f"/sys/fs/cgroup/memory{path}/memory.oom_control"]
        else:
            continue
        for candidate in candidates:
            try:
                with open(candidate) as fh:
                    for line in fh:
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and value.strip().isdigit():
                            return int(value)
            except OSError:
                continue
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
