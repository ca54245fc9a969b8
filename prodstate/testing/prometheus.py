"""A Prometheus server on a free loopback port, scraping given targets with given rules."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prodstate.testing.ports import free_port
from prodstate.testing.process import ManagedProcess

PROMETHEUS = os.environ.get("PRODSTATE_PROMETHEUS", "prometheus")


class PrometheusServer(ManagedProcess):
    """A private Prometheus scraping ``targets`` (``host:port``) as job ``job`` and
    evaluating ``rule_files``, both every ``interval``; its data lives in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[str],
        *,
        rule_files: Sequence[Path] = (),
        job: str = "prodstate",
        interval: str = "2s",
        name: str = "prometheus",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir = Path(workdir) / name
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(Path(path).resolve()) for path in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        argv = [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        super().__init__(name, argv, workdir, ready=self._is_ready)

    def _is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def query(self, expr: str) -> list[dict]:
        """The instant vector ``expr`` evaluates to now: ``[{"metric": {...}, "value":
        [time, "text"]}, ...]``. ValueError if Prometheus refuses the query."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            raise ValueError(f"{expr}: {exc.read().decode(errors='replace')}") from None
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body}")
        return body["data"]["result"]

    def firing(self) -> list[dict[str, str]]:
        """The labels of every alert firing now."""
        return [series["metric"] for series in self.query('ALERTS{alertstate="firing"}')]
