"""Spark Connect, for segkit.engine: the server a Spark target reaches, and a session of segkit's own on it.

A spark target reaches a Spark Connect server when its ``server_side_parameters`` set ``spark.remote`` (dbt-spark's
session method then makes dbt a Connect client too); a databricks target reaches its cluster through Databricks
Connect, whose connection string is a Spark Connect URL. The server's JVM is already running, so a session sets
runtime SQL options only (segkit.profile refuses a target that sets others) and has no sparkContext.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Mapping

from segkit.errors import SegkitError

# A cluster's http_path (sql/protocolv1/o/<workspace id>/<cluster id>); a SQL warehouse's has no Spark Connect.
_DATABRICKS_CLUSTER_PATH = re.compile(r"^/?sql/protocolv1/o/[^/]+/([^/]+)/?$")
# What pyspark sets in the environment when it opens a Spark Connect session (pyspark.sql.session): left set, a
# later local session in the same process would be taken for a Connect one.
_ENVIRONMENT = ("SPARK_CONNECT_MODE_ENABLED",)
# Retries of the first call, 50 ms growing fourfold: about 4 s in all.
_FIRST_CALL_RETRIES = 4


def remote_url(output: Mapping[str, Any]) -> str | None:
    """The Spark Connect server a Spark target reaches, None for a local session: a spark target's spark.remote; for
    a databricks target, its cluster through Databricks Connect (SPARK_REMOTE, Databricks Connect's own variable, wins
    when set), None when the target names no cluster or no token."""
    if output.get("type") != "databricks":
        remote = (output.get("server_side_parameters") or {}).get("spark.remote")
        return str(remote) if remote else None
    if os.environ.get("SPARK_REMOTE"):
        return os.environ["SPARK_REMOTE"]
    host = re.sub(r"^https?://", "", str(output.get("host") or "")).strip("/")
    path = _DATABRICKS_CLUSTER_PATH.match(str(output.get("http_path") or ""))
    cluster = output.get("cluster_id") or (path.group(1) if path else None)
    if not (host and cluster and output.get("token")):
        return None
    # Databricks Connect's connection string (a Spark Connect URL; the token makes it TLS).
    return f"sc://{host}:443/;token={output['token']};x-databricks-cluster-id={cluster}"


def server(url: str) -> str:
    """The URL without its parameters, which may hold a token: what a summary or a message may show."""
    return url.split(";")[0].rstrip("/")


def open_session(url: str, output: Mapping[str, Any]):
    """A session of segkit's own on the server at url, with the target's runtime options; and the environment as it
    was before, for `stop`."""
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client.retries import DefaultPolicy

    options = {str(key): str(value) for key, value in (output.get("server_side_parameters") or {}).items()
               if key != "spark.remote"}
    options["spark.sql.ansi.enabled"] = "false"  # as dbt-spark sets it
    environment = {name: os.environ.get(name) for name in _ENVIRONMENT}
    session = None
    try:
        # create(), not getOrCreate(): never a session dbt left open in this process. It sends nothing yet.
        session = SparkSession.builder.remote(url).create()
        # pyspark retries an unreachable server for 10 minutes or more; the first call gives up after seconds, so a
        # wrong URL or a stopped server is said at once. Later calls wait as pyspark does, through a server restart.
        policies = session.client.get_retry_policies()
        session.client.set_retry_policies([DefaultPolicy(max_retries=_FIRST_CALL_RETRIES)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark's RETRIES_EXCEEDED: the advice below says it
            for key, value in options.items():
                session.conf.set(key, value)
        session.client.set_retry_policies(policies)
        return session, environment
    except Exception as error:
        if session is not None:
            session.client.close()  # first: then neither stop() nor the exit asks the server to release the session
            session.stop()
        _restore(environment)
        raise SegkitError(advice(url, error)) from None


def stop(session, environment: Mapping[str, str | None]) -> None:
    """Release the session on its server and restore the environment `open_session` found."""
    try:
        session.stop()
    finally:
        _restore(environment)


def advice(url: str, error: Exception) -> str:
    """What to do when the server at url cannot be used."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # gRPC's own error spans lines; its "details" line says what went wrong
    said = next((line for line in lines if line.startswith("details =")), lines[0] if lines else type(error).__name__)
    return (f"segkit could not use the Spark Connect server {server(url)}: check that it is running and that the "
            "target names it (spark.remote, which the shipped profiles.yml takes from SEGKIT_SPARK_REMOTE; on "
            f"Databricks, host, cluster and token). Spark said: {said}")


def _restore(environment: Mapping[str, str | None]) -> None:
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
