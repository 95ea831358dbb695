"""Job error codes: every way a job can fail, and whether trying again may help.

``docs/error-codes.md`` lists the same codes; a test keeps them in step and
checks that every code raised anywhere in apps/ is registered here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class JobErrorCode:
    retryable: bool
    meaning: str


JOB_ERROR_CODES: dict[str, JobErrorCode] = {
    "internal_error": JobErrorCode(False, "Unexpected error in the panel's own code; see the server log."),
    "handler_missing": JobErrorCode(False, "No handler is registered for this job type in this version."),
    "job_timeout": JobErrorCode(False, "The job ran longer than its timeout and was stopped."),
    "worker_lost": JobErrorCode(True, "The worker process running the job died; the job runs again."),
    "resource_failed": JobErrorCode(False, "The site or environment is failed; reset it before new work."),
    "node_unreachable": JobErrorCode(True, "The node did not answer over SSH in time."),
}


class JobError(Exception):
    """Raised by handlers: a registered code and a message an operator can act on."""

    def __init__(self, code: str, message: str, *, retryable: bool | None = None, resource_intact: bool = False):
        if code not in JOB_ERROR_CODES:
            raise ValueError(f"unregistered job error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = JOB_ERROR_CODES[code].retryable if retryable is None else retryable
        # True when the handler undid its work (e.g. rolled back): the site stays active.
        self.resource_intact = resource_intact


class JobInterrupted(Exception):
    """The handler was stopped at a safe point; not an error of its own."""


class JobCancelled(JobInterrupted):
    pass


class JobTimedOut(JobInterrupted):
    pass


class JobClaimLost(JobInterrupted):
    """Another worker (or the sweeper) took the job over; this run must stop quietly."""
