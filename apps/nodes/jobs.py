"""Job handlers for nodes."""

from django.conf import settings

from apps.jobs.errors import JobError
from apps.jobs.registry import job_handler
from apps.nodes import services
from apps.nodes.remote_exec import run_program

# apt-get on a fresh server dominates; the remote deadline comes first, so a
# slow node ends as a retryable remote_timeout rather than the job's own timeout.
PROVISION_REMOTE_TIMEOUT = 1800
PROVISION_JOB_TIMEOUT = PROVISION_REMOTE_TIMEOUT + 300

# The health report kept on the node row (the rest of the result is the job's).
HEALTH_KEYS = ("services", "versions", "disk", "memory", "load", "fail2ban", "firewall", "listen_address")


def provision_params(node, payload: dict) -> dict:
    """What provision.py gets. Unless the payload says otherwise, the firewall
    is loaded on remote nodes only: on the machine that runs the panel it could
    cut off the panel's own port. NODE_APPLY_FIREWALL = False (test machines,
    nodes whose firewall is managed elsewhere) turns the default off."""
    default_firewall = settings.NODE_APPLY_FIREWALL and not node.is_local
    params = {
        "ssh_port": node.ssh_port,
        "apply_firewall": payload.get("apply_firewall", default_firewall),
        "extra_tcp_ports": payload.get("extra_tcp_ports", []),
    }
    # The default server must listen where the environments' server blocks do
    # (the same setting), or it would not be the default for their address.
    listen_address = payload.get("listen_address")
    params["listen_address"] = settings.NODE_LISTEN_ADDRESS if listen_address is None else listen_address
    return params


@job_handler("node_provision", timeout_seconds=PROVISION_JOB_TIMEOUT)
def node_provision(ctx):
    node = ctx.job.node
    params = provision_params(node, ctx.payload)
    ctx.log(
        f"provisioning {node.name} ({node.hostname}): firewall "
        f"{'loaded' if params['apply_firewall'] else 'written, not loaded'}"
    )
    try:
        result = run_program(node, "provision.py", params, ctx=ctx, timeout=PROVISION_REMOTE_TIMEOUT)
    except JobError as exc:
        if exc.code == "node_unreachable":
            services.mark_unreachable(node, exc.message)
        else:
            services.record_provision_failure(node, f"{exc.code}: {exc.message}")
        raise
    services.mark_provisioned(node, {key: result[key] for key in HEALTH_KEYS if key in result})
    changed = result.get("changed", [])
    ctx.result.update(changed=changed, services=result.get("services", {}))
    ctx.log(f"{len(changed)} change(s)" if changed else "no changes: the node was already provisioned")
