"""The local Dask cluster listens on 127.0.0.1 only, over TLS, with no dashboard unless asked."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
import urllib.error
import urllib.request

import psutil
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline

distributed = pytest.importorskip("distributed")

from vfxmatte.engine import dask_executor  # noqa: E402 - after the importorskip
from vfxmatte.engine.dask_executor import bokeh_missing, start_local_cluster  # noqa: E402


def _listening() -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening socket of this process and its children."""
    me = psutil.Process()
    found = []
    for process in [me, *me.children(recursive=True)]:
        try:
            sockets = getattr(process, "net_connections", process.connections)(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(process.pid, s.laddr.ip, s.laddr.port) for s in sockets if s.status == "LISTEN"]
    return found


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _config(shot, out, **engine) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.frames = "1001-1002"
    config.output_options.kinds = "alpha"
    config.engine.progress = False
    config.engine.executor, config.engine.workers = "dask", 1
    config.engine.force_executor = True  # the shot is too small for Dask to win
    for key, value in engine.items():
        setattr(config.engine, key, value)
    return config


def test_a_run_listens_on_loopback_only_with_tls_and_no_dashboard(small_shot, tmp_path) -> None:
    seen: list[tuple[int, str, int]] = []
    before = {port for _, _, port in _listening()}
    report = run_pipeline(
        _config(small_shot, tmp_path), on_progress=lambda e: seen.extend(_listening())
    )
    assert report.ok and report.written == [1001, 1002]
    ours = [s for s in seen if s[2] not in before]
    pids = {pid for pid, _, _ in ours}
    # Scheduler, nanny and HTTP server here, and the worker process's own servers.
    assert len(pids) >= 2 and len({port for *_, port in ours}) >= 4, ours
    outside = [s for s in ours if not ipaddress.ip_address(s[1]).is_loopback]
    assert not outside, f"listening beyond this machine: {outside}"


def test_the_cluster_refuses_plain_clients_and_serves_only_a_health_check() -> None:
    pytest.importorskip("cryptography", reason="TLS needs cryptography (vfxmatte[distributed])")
    with start_local_cluster(1) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        for worker in cluster.scheduler_info["workers"]:
            assert worker.startswith("tls://127.0.0.1:")
        with pytest.raises((OSError, TimeoutError)):
            distributed.Client(address.replace("tls://", "tcp://"), timeout=3, set_as_default=False)
        port = cluster.scheduler.http_server.port
        assert cluster.scheduler.http_server.address == "127.0.0.1"
        assert _get(f"http://127.0.0.1:{port}/health") == (200, "ok")
        for page in ("/status", "/info/main/workers.html", "/json/identity.json", "/metrics"):
            assert _get(f"http://127.0.0.1:{port}{page}")[0] == 404, page
        status, sitemap = _get(f"http://127.0.0.1:{port}/sitemap.json")
        assert status == 200 and set(json.loads(sitemap)["paths"]) == {"/health", "/sitemap.json"}
        with distributed.Client(cluster, set_as_default=False) as client:
            assert client.submit(sum, [1, 2], pure=False).result() == 3


def _dashboard_run(small_shot, tmp_path, caplog) -> list[tuple[int, str]]:
    """A run with engine.dashboard: the pages fetched while it runs, from the logged link."""
    answers: list[tuple[int, str]] = []

    def fetch(event) -> None:
        if answers:
            return
        links = re.findall(r"http://[^\s)]+/status", caplog.text)
        assert links, caplog.text
        assert links[0].startswith("http://127.0.0.1:")
        answers.append(_get(links[0]))
        answers.append(_get(links[0].replace("/status", "/health")))

    with caplog.at_level(logging.WARNING, logger="vfxmatte.engine.dask_executor"):
        report = run_pipeline(_config(small_shot, tmp_path, dashboard=True), on_progress=fetch)
    assert report.ok and answers
    return answers


@pytest.mark.skipif(bokeh_missing() is not None, reason="bokeh is not installed here")
def test_the_dashboard_answers_on_loopback_when_asked_for(small_shot, tmp_path, caplog) -> None:
    (status, page), health = _dashboard_run(small_shot, tmp_path, caplog)
    assert status == 200 and "Dask" in page
    assert health == (200, "ok")
    assert "Dask dashboard of this run: http://127.0.0.1:" in caplog.text


def test_without_bokeh_the_dashboard_option_says_so(
    small_shot, tmp_path, caplog, monkeypatch
) -> None:
    # What the scheduler (in this process) and the executor import for the dashboard.
    monkeypatch.setitem(sys.modules, "distributed.dashboard.scheduler", None)
    assert bokeh_missing() is not None
    (status, page), _ = _dashboard_run(small_shot, tmp_path, caplog)
    assert status == 200 and "Dask needs bokeh" in page
    assert "The Dask dashboard needs the Python package bokeh, which is not installed" in (
        caplog.text
    )
    assert "pip install 'bokeh>=3.1'" in caplog.text


def test_without_cryptography_the_cluster_warns_that_other_users_could_connect(
    monkeypatch, caplog
) -> None:
    from distributed.security import Security

    def no_cryptography(*args, **kwargs):
        raise ImportError("Using `Security.temporary` requires `cryptography`")

    monkeypatch.setattr(Security, "temporary", classmethod(no_cryptography))
    with caplog.at_level(logging.WARNING, logger="vfxmatte.engine.dask_executor"):
        assert dask_executor._temporary_security() is None
    assert "runs without TLS" in caplog.text and "any user of this machine" in caplog.text


def test_with_a_scheduler_the_dashboard_option_logs_that_clusters_link(caplog) -> None:
    from vfxmatte.engine.config import EngineConfig
    from vfxmatte.engine.dask_executor import DaskExecutor

    with start_local_cluster(1, dashboard=True) as cluster:
        engine = EngineConfig(executor="dask", scheduler=cluster.scheduler_address, dashboard=True)
        with caplog.at_level(logging.WARNING, logger="vfxmatte.engine.dask_executor"):
            executor = DaskExecutor(engine)  # connects with the credentials of the cluster
            executor.close()
        port = cluster.scheduler.http_server.port
    assert (
        f"Dask dashboard of the cluster at {cluster.scheduler_address}: "
        f"http://127.0.0.1:{port}/status" in caplog.text
    )
