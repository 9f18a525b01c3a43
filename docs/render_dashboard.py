"""Draw what a Grafana dashboard of the chart shows, from Prometheus's own answers, as a PNG (no Grafana needed).

    python docs/render_dashboard.py --prometheus http://127.0.0.1:9090 --project obs --table driver_hourly \
        [--dashboard deploy/helm/provender/dashboards/ingestion.json] [--minutes 5] [--out docs/ingestion-dashboard.png]

Every panel's queries run through /api/v1/query_range (time series) or /api/v1/query (stat, bar gauge, table)
with the dashboard's variables filled in as Grafana fills them; the panels keep the dashboard's grid layout.
Needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DASHBOARD = Path(__file__).resolve().parents[1] / "deploy/helm/provender/dashboards/ingestion.json"
UNITS = {"s": "seconds", "percentunit": "ratio", "rowsps": "rows/s", "reqps": "req/s", "short": ""}


def fill(expr: str, values: dict[str, str]) -> str:
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], expr)
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template or "")
    return text or json.dumps(labels, sort_keys=True)


def api(prometheus: str, path: str, **params: Any) -> list[dict[str, Any]]:
    url = f"{prometheus.rstrip('/')}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        answer = json.loads(r.read())
    if answer.get("status") != "success":
        raise RuntimeError(f"{params.get('query')}: {answer.get('error')}")
    return answer["data"]["result"]


def render(
    prometheus: str,
    out: Path,
    dashboard: Path = DEFAULT_DASHBOARD,
    project: str = ".*",
    table: str = ".*",
    minutes: float = 5.0,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    board = json.loads(dashboard.read_text())
    values = {
        "project": project,
        "table": table,
        "datasource": "prometheus",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": f"{int(minutes * 60)}s",
    }
    end = time.time()
    start = end - minutes * 60
    step = max(1.0, minutes * 60 / 300)
    panels = [p for p in board["panels"] if p["type"] != "row"]
    rows_total = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"])
    fig = plt.figure(figsize=(18, rows_total * 0.36 + 0.8))
    grid = fig.add_gridspec(
        rows_total, 24, hspace=0.35, wspace=0.6, top=1 - 0.5 / (rows_total * 0.36 + 0.8), bottom=0.02
    )
    now_text = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    fig.suptitle(f"{board['title']}  (project={project}, table={table}; Prometheus answers at {now_text})")
    for row in (p for p in board["panels"] if p["type"] == "row"):
        g = row["gridPos"]
        ax = fig.add_subplot(grid[g["y"], :])
        ax.axis("off")
        ax.text(0, 0.5, row["title"], fontsize=12, fontweight="bold", va="center")
    for panel in panels:
        g = panel["gridPos"]
        ax = fig.add_subplot(
            grid[g["y"] + 1 if g["h"] > 3 else g["y"] : g["y"] + g["h"], g["x"] : g["x"] + g["w"]]
        )
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_title(panel["title"], fontsize=9, loc="left")
        if panel["type"] == "timeseries":
            plotted = 0
            for target in panel["targets"]:
                series = api(prometheus, "query_range", query=fill(target["expr"], values), start=start, end=end,
                             step=step)  # fmt: skip
                for s in series:
                    xs = [datetime.fromtimestamp(float(t), UTC) for t, _ in s["values"]]
                    ys = [float(v) for _, v in s["values"]]
                    ax.plot(xs, ys, label=legend(target.get("legendFormat", ""), s["metric"]), linewidth=1.5)
                    plotted += 1
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
            ax.tick_params(labelsize=7)
            ax.set_ylabel(UNITS.get(unit, unit), fontsize=7)
            if plotted:
                ax.legend(fontsize=6, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        else:  # stat, bar gauge, table: the latest value per series, as bars
            labels, numbers = [], []
            for target in panel["targets"]:
                for s in api(prometheus, "query", query=fill(target["expr"], values), time=end):
                    labels.append(legend(target.get("legendFormat", ""), s["metric"]))
                    numbers.append(float(s["value"][1]))
            if numbers:
                bars = ax.barh(labels, numbers, color="#3274d9")
                ax.bar_label(
                    bars, labels=[f"{v:.3g} {UNITS.get(unit, unit)}".strip() for v in numbers], fontsize=7
                )
                ax.tick_params(labelsize=7)
                ax.margins(x=0.3)
            else:
                ax.axis("off")
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD)
    p.add_argument("--project", default=".*")
    p.add_argument("--table", default=".*")
    p.add_argument("--minutes", type=float, default=5.0, help="time range of the time series panels")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "ingestion-dashboard.png")
    args = p.parse_args(argv)
    print(render(args.prometheus, args.out, args.dashboard, args.project, args.table, args.minutes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
