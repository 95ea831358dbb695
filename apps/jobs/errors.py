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
    "job_cancelled": JobErrorCode(False, "An operator cancelled the job (before it ran, or while it ran); what it was "
                                         "making (a backup) was not finished."),
    "resource_failed": JobErrorCode(False, "The site or environment is failed; reset it before new work."),
    "node_unreachable": JobErrorCode(True, "The node did not answer over SSH in time."),
    "host_key_mismatch": JobErrorCode(False, "The node's SSH host key differs from the pinned one; an operator must verify it."),
    "ssh_auth_failed": JobErrorCode(False, "The node refused the panel's SSH key."),
    "remote_timeout": JobErrorCode(True, "A command on the node did not finish in time and was killed."),
    "remote_step_failed": JobErrorCode(False, "A step on the node failed; the job log shows which and why."),
    "config_invalid": JobErrorCode(False, "A rendered configuration file was refused by its validator; the old one was kept."),
    "service_failed": JobErrorCode(True, "A service on the node did not start or reload."),
    "bad_parameters": JobErrorCode(False, "The node program refused its parameters (a bug in the panel)."),
    "core_checksum_mismatch": JobErrorCode(False, "The downloaded WordPress archive does not match its published checksum."),
    "wordpress_failed": JobErrorCode(False, "WordPress itself reported an error (install, database, options)."),
    "health_check_failed": JobErrorCode(False, "The environment did not pass its health check."),
    "drift_no_baseline": JobErrorCode(False, "The environment has no baseline of production to check drift against."),
    "deploy_source_failed": JobErrorCode(False, "The deploy source (git repository and ref) could not be fetched."),
    "deploy_layout_unknown": JobErrorCode(False, "The repository holds neither a wp-content tree nor a WordPress tree."),
    "archive_invalid": JobErrorCode(False, "The node refused the deploy archive (unsafe or unknown entries)."),
    "deploy_source_invalid": JobErrorCode(False, "The node refused the deploy source: a link leading out of the "
                                                  "checked-out tree, a hard link or special file, or a local "
                                                  "repository where they are not allowed; nothing was built."),
    "deploy_check_failed": JobErrorCode(False, "WordPress does not load from the new release; nothing was switched."),
    "rollback_failed": JobErrorCode(False, "Switching back to an earlier release failed; the environment needs an operator."),
    "node_busy": JobErrorCode(True, "Another job's program still runs on the node for the same environment, site or node "
                                    "(the node's own lock); the job runs again later."),
    "claim_stale": JobErrorCode(False, "The node refused a program of an attempt the panel had already given up on "
                                       "(a newer run of the job has started there)."),
    "backup_storage_not_configured": JobErrorCode(False, "Backups are off: no S3-compatible storage is configured "
                                                         "(Panel settings or PRESSLUFT_BACKUP_S3_*)."),
    "backup_storage_failed": JobErrorCode(True, "restic could not open, create or write the site's repository in the "
                                                "backup storage (unreachable, refused keys, full); the job runs again."),
    "update_failed": JobErrorCode(False, "WordPress's upgrader could not install an update in the new release, or the "
                                         "release does not report the new versions; nothing was switched."),
    "update_package_failed": JobErrorCode(True, "An update package could not be downloaded; nothing was switched "
                                                "and the job runs again."),
    "update_package_invalid": JobErrorCode(False, "An update package (or the release built from it) broke the archive "
                                                  "rules: links leading out, special files, unsafe names, too big; "
                                                  "nothing was switched."),
    "update_rolled_back": JobErrorCode(False, "The updated site failed its health check or its pages broke or lost "
                                              "most of their content; the update was rolled back (and the database "
                                              "restored when a core update had upgraded it). The job log names the "
                                              "component."),
    "dns_not_pointing": JobErrorCode(False, "The hostname's DNS records do not point at the node; the message names the "
                                            "record to create (or remove). Nothing was written."),
    "dns_lookup_failed": JobErrorCode(True, "The DNS resolvers gave no answer (Panel settings or PRESSLUFT_DNS_RESOLVERS); "
                                            "the job runs again."),
    "acme_settings_invalid": JobErrorCode(False, "PRESSLUFT_DNS_RESOLVERS or PRESSLUFT_ACME_CA_BUNDLE cannot be used "
                                                 "(not IP addresses, an unreadable file); nothing was written."),
    "certificate_failed": JobErrorCode(False, "The ACME server gave no certificate (HTTP-01 challenge refused, rate limit, "
                                              "unreachable server); the domain stays attached without TLS."),
    "panel_not_on_loopback": JobErrorCode(False, "panel_https: the panel's web server listens on an address its own "
                                                 "Nginx cannot reach on loopback (PRESSLUFT_LISTEN); nothing was "
                                                 "written."),
    "domain_exists": JobErrorCode(False, "The hostname is attached to another environment already."),
    "preview_settings_invalid": JobErrorCode(False, "The preview domain's settings cannot be used (a PRESSLUFT_PREVIEW_DOMAIN "
                                                    "or PRESSLUFT_DNS01_* variable refused by its check, or a "
                                                    "provider without its credentials); nothing was written."),
    "backup_environment_deleted": JobErrorCode(False, "The backup's environment was deleted before the backup was "
                                                      "taken; nothing was stored."),
    "backup_not_restorable": JobErrorCode(False, "The backup is no longer completed (expired, failed) or its record is "
                                                 "gone or incomplete; nothing was changed."),
    "backup_checksum_mismatch": JobErrorCode(False, "What the backup storage gave back does not match the checksum the "
                                                    "backup recorded (or a snapshot is missing); nothing was changed."),
    "backup_archive_invalid": JobErrorCode(False, "The backup's files archive holds entries no backup makes (unsafe "
                                                  "names, links out of the release, entries beneath a link); "
                                                  "nothing was changed."),
    "promotion_rolled_back": JobErrorCode(False, "Production failed its health check after a promotion; the previous "
                                                 "tables and release were swapped back in one step and are live again."),
    "promotion_restored_from_backup": JobErrorCode(False, "A promotion failed and swapping production back failed "
                                                          "too; production was restored from the pre-promotion "
                                                          "backup and is healthy."),
    "promotion_drifted": JobErrorCode(False, "The promotion's own drift check found production changed, since the "
                                             "source's baseline, data a promotion would overwrite; nothing was changed."),
    "unsafe_path": JobErrorCode(False, "A path inside the environment is a link or has the wrong owner where the node expects its own "
                                       "directory or file; nothing was changed. The site may be compromised: an operator should look."),
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
