"""The report's plots as plain Plotly figure dicts ({"data": [...], "layout": {...}}).

Built from the study's data (reports.build) with no plotting library imported: the page hands
them to the embedded plotly.js, and the W&B study run logs the same dicts. Every text that
plotly draws is passed through :func:`plot_text`, because plotly reads a few HTML-like tags
(``<a href>``, ``<b>``) in labels; escaped, they are drawn as the characters they are.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["COST_AXES", "CURVE_ERRORS", "CURVE_METRICS", "curves_figure", "history_figure", "importance_figure", "pareto_figure",
           "pareto_front", "plot_text", "problems_figure"]

COST_AXES = {"trainable_params": "trainable parameters", "train_s": "training time (s)", "peak_memory_mb": "peak memory (MiB)"}
CURVE_METRICS = {"train_loss": "train loss", "eval_loss": "eval loss", "grad_norm": "gradient norm",
                 "learning_rate": "learning rate", "probe/pass@1": "probe pass@1 (validation)"}
CURVE_ERRORS = {"probe/pass@1": "probe/pass@1_se"}  # drawn as +-1 standard error bars on the curve


def plot_text(value: Any) -> str:
    return html.escape(str(value), quote=False)


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": plot_text(title)}, "margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "height": 340,
            "hovermode": "closest", **extra}


def pareto_front(points: list[tuple[float, float, Any]], *, maximize: bool) -> list[Any]:
    """Keys of the points no other point beats on both axes: quality (``maximize``) and cost (lower is better)."""
    sign = 1.0 if maximize else -1.0
    front, best = [], float("-inf")
    # cheapest first; a point joins the front when it is better than every cheaper point
    for _cost, quality, key in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if sign * quality > best:
            front.append(key)
            best = sign * quality
    return front


def pareto_figure(trials: list[dict[str, Any]], *, objective: str, maximize: bool, cost: str) -> dict[str, Any] | None:
    points = [(t["metrics"][cost], t["metrics"][objective], t["trial"]) for t in trials
              if t["status"] == "complete" and isinstance(t["metrics"].get(cost), (int, float))
              and isinstance(t["metrics"].get(objective), (int, float))]
    if not points:
        return None
    front = set(pareto_front(points, maximize=maximize))
    on = sorted((p for p in points if p[2] in front), key=lambda p: p[0])
    off = [p for p in points if p[2] not in front]

    def trace(ps, name, colour, mode):
        return {"type": "scatter", "mode": mode, "name": name, "x": [p[0] for p in ps], "y": [p[1] for p in ps],
                "text": [f"trial {p[2]}" for p in ps], "marker": {"size": 9, "color": colour},
                "line": {"shape": "hv", "color": colour}, "hovertemplate": "%{text}<br>%{x}<br>%{y}<extra></extra>"}

    return {"data": [trace(off, "dominated", "#9aa5b1", "markers"), trace(on, "Pareto front", "#2ca02c", "lines+markers")],
            "layout": _layout(f"vs {COST_AXES[cost]}", xaxis={"title": {"text": plot_text(COST_AXES[cost])},
                              "type": "log" if cost == "trainable_params" else "linear"},
                              yaxis={"title": {"text": plot_text(objective)}})}


def importance_figure(importances: dict[str, float]) -> dict[str, Any] | None:
    if not importances:
        return None
    items = sorted(importances.items(), key=lambda kv: kv[1])
    return {"data": [{"type": "bar", "orientation": "h", "x": [v for _, v in items], "y": [plot_text(k) for k, _ in items],
                      "marker": {"color": "#1f77b4"}}],
            "layout": _layout("parameter importance (PED-ANOVA)", xaxis={"title": {"text": "share of objective variance"}},
                              margin={"l": 180, "r": 20, "t": 40, "b": 50})}


def history_figure(trials: list[dict[str, Any]], *, objective: str, maximize: bool) -> dict[str, Any] | None:
    done = sorted((t["trial"], t["metrics"][objective]) for t in trials
                  if t["status"] == "complete" and isinstance(t["metrics"].get(objective), (int, float)))
    if not done:
        return None
    best, running = [], None
    for _, v in done:
        running = v if running is None else (max(running, v) if maximize else min(running, v))
        best.append(running)
    xs = [n for n, _ in done]
    return {"data": [{"type": "scatter", "mode": "markers", "name": "trial", "x": xs, "y": [v for _, v in done]},
                     {"type": "scatter", "mode": "lines", "name": "best so far", "x": xs, "y": best, "line": {"shape": "hv"}}],
            "layout": _layout("optimization history", xaxis={"title": {"text": "trial"}}, yaxis={"title": {"text": plot_text(objective)}})}


def curves_figure(curves: dict[int, dict[str, list]], metric: str) -> dict[str, Any] | None:
    """One trace per trial for one history metric (``curves``: trial -> metric -> [[step, value], ...])."""
    data = []
    for n, c in sorted(curves.items()):
        if not c.get(metric):
            continue
        trace = {"type": "scatter", "mode": "lines+markers", "name": f"trial {n}", "x": [p[0] for p in c[metric]],
                 "y": [p[1] for p in c[metric]], "marker": {"size": 4}}
        errors = dict(map(tuple, c.get(CURVE_ERRORS.get(metric, ""), [])))
        if errors:
            trace["error_y"] = {"type": "data", "array": [errors.get(p[0], 0.0) for p in c[metric]], "thickness": 1}
        data.append(trace)
    if not data:
        return None
    return {"data": data, "layout": _layout(CURVE_METRICS.get(metric, metric), xaxis={"title": {"text": "step"}},
                                             yaxis={"exponentformat": "e"} if metric == "learning_rate" else {})}


def problems_figure(matrix: dict[str, Any]) -> dict[str, Any] | None:
    """Heatmap: top trials (rows) x problems (columns), each cell that trial's pass rate on the problem."""
    if not matrix.get("problems"):
        return None
    return {"data": [{"type": "heatmap", "z": matrix["rates"], "x": [plot_text(p) for p in matrix["problems"]],
                      "y": [f"trial {n}" for n in matrix["trials"]], "zmin": 0, "zmax": 1, "colorscale": [[0, "#f4f7fb"], [1, "#08306b"]],
                      "hovertemplate": "%{y}<br>%{x}<br>pass rate %{z:.2f}<extra></extra>"}],
            "layout": _layout(f"pass rate per problem ({matrix['benchmark']}), top trials", xaxis={"showticklabels": False},
                              height=120 + 28 * len(matrix["trials"]))}
