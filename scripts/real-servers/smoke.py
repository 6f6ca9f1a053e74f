#!/usr/bin/env python3
"""Smoke test of the real servers of scripts/real-servers.sh with independent clients.

    target/real-servers-venv/bin/python scripts/real-servers/smoke.py [cassandra] [gremlin] [janusgraph]

Cassandra (cassandra-driver): creates a keyspace and table, writes a row, reads it back.
Gremlin / JanusGraph (gremlinpython): adds a vertex with a chosen string id (bytecode traversal
and a script), reads it back by id. Without arguments: cassandra and gremlin. Endpoints come
from WEFT_CASSANDRA_CONTACT_POINTS, WEFT_GREMLIN_URL and WEFT_JANUSGRAPH_URL (the defaults are
what `scripts/real-servers.sh env` prints). Add --keep to keep what it wrote and --check-kept to
only read what an earlier --keep run wrote (for stop/start tests). Exits non-zero on a failure.

The venv: python3 -m venv target/real-servers-venv &&
          target/real-servers-venv/bin/pip install cassandra-driver gremlinpython==3.7.5
"""
import os
import sys
import time
import uuid

KEPT_ID = "weft-smoke-kept"


def cassandra(keep: bool, check_kept: bool) -> None:
    from cassandra.cluster import Cluster

    host, _, port = os.environ.get("WEFT_CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042").split(",")[0].rpartition(":")
    cluster = Cluster([host], port=int(port), connect_timeout=10)
    try:
        session = cluster.connect()
        local = session.execute("SELECT release_version, bootstrapped FROM system.local").one()
        print(f"cassandra: connected to {host}:{port}, release {local.release_version}, bootstrapped {local.bootstrapped}")
        if not check_kept:
            session.execute(
                "CREATE KEYSPACE IF NOT EXISTS weft_smoke WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}"
            )
            session.execute("CREATE TABLE IF NOT EXISTS weft_smoke.things (id text PRIMARY KEY, name text, at timestamp)")
        key = KEPT_ID if (keep or check_kept) else f"smoke-{uuid.uuid4()}"
        if not check_kept:
            session.execute(
                "INSERT INTO weft_smoke.things (id, name, at) VALUES (%s, %s, toTimestamp(now()))", (key, "hello")
            )
        row = session.execute("SELECT id, name FROM weft_smoke.things WHERE id = %s", (key,)).one()
        assert row is not None and row.name == "hello", f"row {key} not read back: {row}"
        print(f"cassandra: row {key!r} {'is still there' if check_kept else 'written and read back'}: name={row.name!r}")
        if not keep and not check_kept:
            session.execute("DELETE FROM weft_smoke.things WHERE id = %s", (key,))
    finally:
        cluster.shutdown()


def gremlin(name: str, url: str, keep: bool, check_kept: bool) -> None:
    from gremlin_python.driver import client as gclient
    from gremlin_python.driver.driver_remote_connection import DriverRemoteConnection
    from gremlin_python.process.anonymous_traversal import traversal
    from gremlin_python.process.traversal import T

    conn = DriverRemoteConnection(url, "g")
    try:
        g = traversal().withRemote(conn)
        vid = KEPT_ID if (keep or check_kept) else f"smoke-{uuid.uuid4()}"
        if name == "janusgraph":
            # JanusGraph refuses custom string ids that contain its reserved "-" ("Custom string
            # id contains reserved string (-)"): a dashed UUID cannot be a vertex id there.
            vid = vid.replace("-", "_")
        if not check_kept:
            g.V(vid).drop().iterate()
            # Bytecode traversal (GraphBinary, gremlinpython's default) with a client-chosen string id.
            g.addV("SmokeThing").property(T.id, vid).property("name", "hello").iterate()
        found = g.V(vid).valueMap(True).toList()
        assert len(found) == 1, f"{name}: vertex {vid} not found: {found}"
        props = found[0]
        got_id = props[T.id]
        assert got_id == vid and isinstance(got_id, str), f"{name}: id came back as {got_id!r}"
        name_value = props["name"]
        name_value = name_value[0] if isinstance(name_value, list) else name_value
        assert name_value == "hello", f"{name}: name is {name_value!r}"
        print(f"{name}: vertex {vid!r} {'is still there' if check_kept else 'added and read back'} by its string id ({url})")
        # A script request (gremlin-groovy) must see the same vertex.
        c = gclient.Client(url, "g")
        try:
            count = c.submit("g.V(vid).count()", {"vid": vid}).all().result()
        finally:
            c.close()
        assert count == [1], f"{name}: script count {count}"
        print(f"{name}: script g.V(vid).count() = {count[0]}")
        if not keep and not check_kept:
            g.V(vid).drop().iterate()
    finally:
        conn.close()


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    check_kept = "--check-kept" in sys.argv
    servers = args or ["cassandra", "gremlin"]
    failed = 0
    for server in servers:
        t0 = time.monotonic()
        try:
            if server == "cassandra":
                cassandra(keep, check_kept)
            elif server == "gremlin":
                gremlin("gremlin", os.environ.get("WEFT_GREMLIN_URL", "ws://127.0.0.1:8182/gremlin"), keep, check_kept)
            elif server == "janusgraph":
                gremlin("janusgraph", os.environ.get("WEFT_JANUSGRAPH_URL", "ws://127.0.0.1:8183/gremlin"), keep, check_kept)
            else:
                print(f"unknown server {server!r}", file=sys.stderr)
                return 2
            print(f"{server}: ok ({time.monotonic() - t0:.1f} s)")
        except Exception as e:  # report every server, then fail
            failed += 1
            print(f"{server}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"{len(servers) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
