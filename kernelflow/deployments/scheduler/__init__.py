"""The scheduler: fires deployments on time, exactly once, with one active instance per store.

Design
------
*One active scheduler.* Any number may run against a store; the active one
holds an ``fcntl.flock`` on ``<home>/scheduler.lock`` (the lease). The
kernel releases it when the holder dies, however it dies, and a standby
polling every :attr:`Scheduler.lease_poll` seconds takes over. Taking over
starts with a compaction, which marks the runs of a dead scheduler Crashed.

*Every fire claimed once.* Before a slot runs, its (deployment, scheduled
time) row is inserted into ``deployment_fires`` (see
:mod:`kernelflow.deployments.records`); a slot someone already claimed is
never run again, even across restarts. Each try is claimed the same way.

*No polling.* The active scheduler keeps a heap of next fire times and
sleeps in ``select`` until the earliest, or until a byte arrives on the FIFO
``<home>/deployments/wake.fifo`` (written by deploy, pause, ``deployment
run``...), or on its own pipe (a run finished, stop was called). A safety
re-read of the store happens every :data:`RESCAN_S` seconds.

*On taking over* it catches up missed slots per deployment
(:mod:`kernelflow.deployments.catchup`), starts fires other processes
claimed but did not start (``deployment run`` without waiting, ``--after``
triggers, a dead scheduler's queue), and retries Crashed runs that have
tries left. A schedule slot that was claimed but not started within the
deployment's grace period turns Late, then follows the catch-up policy
together with the slots nobody claimed: nothing stays Scheduled in the past.

Runs execute concurrently, at most ``slots`` at once and at most a
deployment's ``limit`` of its own; a fire that finds no room waits in a
queue and turns Late after the deployment's grace period.

*Starting on time.* The active scheduler keeps ``warm_workers`` worker
processes that have imported papermill and wait for a job
(:mod:`kernelflow.deployments.standby`); a fire hands its try to one, which
asks for the notebook's kernel within milliseconds instead of after the
imports of a cold worker (~0.5 s of CPU, seconds on a busy machine), and a
replacement starts at once. Each worker
runs one try and exits. The waiting ones are killed when the scheduler stops
and end by themselves if it dies. :attr:`Scheduler.started_fires` records
when each try reached each step.

*Who holds the lease.* The holder writes its pid into the lease file and
one JSON line beside it, ``<home>/scheduler.holder`` (pid, host, a process
label such as ``jupyter server`` or ``kernelflow scheduler``, and since
when); :func:`lease_holder` reads them for ``GET scheduler``, and checks the
flock itself, so a holder killed with ``kill -9`` (whose files stay behind)
is not reported.

*Cancelling a run.* :meth:`Scheduler.cancel` cancels a run this scheduler
executes or queues: Cancelling, then its notebook process tree is killed and
the run ends Cancelled through :class:`RunExecution`. Another process asks
the holder with :func:`request_cancel`: a file named after the run in
``<home>/deployments/cancel/`` and a byte on the wake FIFO; the holder picks
it up at once.

*Stopping* releases the lease first. A graceful stop then finishes what
this scheduler claimed: runs in progress, and the queued fires, started as
room frees. A cancelling stop (Ctrl-C) cancels the runs in progress and
releases the queued fires for the next scheduler.

*One bad deployment stops nothing.* A deployment whose stored definition
cannot be used (see :attr:`Deployment.problem`), or whose scheduling fails,
is logged once and left alone; the others keep firing. Only an error of the
loop itself (a store that needs a human: corrupt, shared, too new) stops
the scheduler, and :attr:`Scheduler.error` says why.

Modules
-------
:mod:`.lease` (which scheduler is active, who holds the lease),
:mod:`.slots` (claiming, queueing and starting tries; cancelling; ``--after``),
:mod:`.firing` (next fire times, catch-up, recovery),
:mod:`.loop` (:class:`Scheduler`: its thread, lifecycle and wake-ups).
"""

from kernelflow.deployments.scheduler.lease import lease_holder
from kernelflow.deployments.scheduler.loop import Scheduler
from kernelflow.deployments.scheduler.slots import (
    CANCEL_DIR,
    StartedFire,
    after_hook,
    cancel_requests_dir,
    request_cancel,
    trigger_after,
)

__all__ = [
    "CANCEL_DIR",
    "Scheduler",
    "StartedFire",
    "after_hook",
    "cancel_requests_dir",
    "lease_holder",
    "request_cancel",
    "trigger_after",
]
