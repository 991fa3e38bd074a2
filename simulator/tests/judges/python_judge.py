"""The official Aerospike Python client judges the simulator.

Usage: python_judge.py HOST:PORT[,HOST:PORT...] USER PASSWORD

Connects (internal authentication), waits for the cluster to be tended, reads what the cluster says, creates the
user `from-python` (role `read`), checks that a wrong password is refused, and prints one JSON object:
nodes, build, users (name -> sorted roles), roles (name -> privileges, whitelist, quotas) and the result code of the
refused login.
"""
import json
import sys
import time

import aerospike
from aerospike import exception as ex


def config(hosts, user, password):
    return {
        "hosts": hosts,
        "user": user,
        "password": password,
        "policies": {"auth_mode": aerospike.AUTH_INTERNAL, "timeout": 5000},
        "connect_timeout": 5000,
    }


def connect(hosts, user, password):
    client = aerospike.client(config(hosts, user, password))
    if not client.is_connected():
        client.connect()
    return client


def main():
    hosts = [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1])) for h in sys.argv[1].split(",")]
    user, password = sys.argv[2], sys.argv[3]
    client = connect(hosts, user, password)
    deadline = time.monotonic() + 20
    while len(client.get_nodes()) < len(hosts):
        if time.monotonic() > deadline:
            raise SystemExit(f"tended only {client.get_nodes()}")
        time.sleep(0.1)
    builds = {v[1].strip() for v in client.info_all("build").values() if v and v[1]}

    client.admin_create_user("from-python", "python-pw", ["read"])
    users = {
        name: sorted(info.get("roles", []))
        for name, info in client.admin_query_users_info().items()
    }
    roles = {}
    for name, role in client.admin_get_roles().items():
        roles[name] = {
            "privileges": sorted(
                [p.get("code"), p.get("ns", ""), p.get("set", "")] for p in role.get("privileges", [])
            ),
            "whitelist": sorted(role.get("whitelist", [])),
            "read_quota": role.get("read_quota", 0),
            "write_quota": role.get("write_quota", 0),
        }

    refused = None
    try:
        connect(hosts, user, password + "-wrong").close()
    except ex.AerospikeError as e:
        refused = e.code
    reader = connect(hosts, "from-python", "python-pw")
    reader_nodes = len(reader.get_nodes())
    reader.close()
    client.close()
    print(json.dumps({
        "nodes": len(hosts),
        "builds": sorted(builds),
        "users": users,
        "roles": roles,
        "wrong_password_code": refused,
        "reader_nodes": reader_nodes,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
