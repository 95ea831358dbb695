#!/usr/bin/env python3
"""Create a one-time WordPress admin login token (magic login).
Parameters: system_name, root, url, lifetime (seconds)."""

import wp_helper_client
from nodelib import main


def login(params: dict) -> dict:
    answer = wp_helper_client.call(
        params["system_name"],
        {"command": "login-token", "root": params["root"], "url": params["url"], "lifetime": params.get("lifetime", 60)},
        timeout=8,
    )
    return {"token": answer["token"], "expires": answer["expires"]}


if __name__ == "__main__":
    main(login)
