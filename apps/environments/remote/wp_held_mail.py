#!/usr/bin/env python3
"""List the mail a non-production environment held back, newest first.
Parameters: system_name, root, url, limit."""

import wp_helper_client
from nodelib import main


def held_mail(params: dict) -> dict:
    answer = wp_helper_client.call(
        params["system_name"],
        {"command": "held-mail", "root": params["root"], "url": params["url"], "limit": params.get("limit", 50)},
        timeout=12,
    )
    return {"mails": answer.get("mails") or []}


if __name__ == "__main__":
    main(held_mail)
