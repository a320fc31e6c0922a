// The study report's only application script (its hash is in the page's Content-Security-Policy).
// Every text from a record is put into the page with textContent, never as HTML.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var note = window.__reportNote || function () {};

  function el(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (kid) {
      if (kid !== null && kid !== undefined) node.appendChild(typeof kid === "string" ? document.createTextNode(kid) : kid);
    });
    return node;
  }
  function content(id) { return document.querySelector("#" + id + " .content"); }
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return Math.abs(v) >= 10000 ? v.toLocaleString("en-US") : String(v);
      if (v !== 0 && Math.abs(v) < 1e-3) return v.toExponential(2);
      return String(Math.round(v * 10000) / 10000);
    }
    return String(v);
  }
  function badge(text, kind, title) {
    var b = el("span", {cls: "badge " + (kind || text), text: text});
    if (title) b.title = title;
    return b;
  }
  function plot(container, name, height) {
    var fig = D.figures[name];
    if (!fig) return null;
    var div = el("div", {"class": "plot", "data-figure": name});
    container.appendChild(div);
    try {
      Plotly.newPlot(div, fig.data, Object.assign({}, fig.layout, height ? {height: height} : {}),
                     {displaylogo: false, responsive: true, displayModeBar: false});
    } catch (e) { note("plot " + name + " failed: " + e.message); }
    return div;
  }

  // header and skipped records
  var c = D.counts;
  document.getElementById("subtitle").textContent =
    "objective " + D.objective + " (" + D.direction + ") \u00b7 " + c.complete + " complete, " + c.pruned + " pruned, " +
    c.failed + " failed" + (c.running ? ", " + c.running + " running" : "") + " \u00b7 built " + D.built + " from the trial records";
  if (D.skipped.length) {
    var box = el("div", {cls: "warning"}, [el("strong", {text: "Skipped " + D.skipped.length + " record(s):"})]);
    var ul = el("ul");
    D.skipped.forEach(function (s) { ul.appendChild(el("li", {text: s.record + ": " + s.reason})); });
    box.appendChild(ul);
    document.getElementById("skipped").appendChild(box);
  }

  // 1. leaderboard: sortable, diagnosis badges, reasons
  (function () {
    var root = content("leaderboard");
    root.appendChild(el("p", {cls: "note", text: "Ranked by " + D.objective + ". Intervals are 95% over problems; 'vs #1' is the " +
      "paired difference from the best trial in points, '~' where the two cannot be told apart. Click a column to sort."}));
    var table = el("table", {id: "leaderboard-table"});
    var head = el("tr");
    D.columns.forEach(function (col, i) {
      var th = el("th", {text: col.replace(/^param:/, ""), "data-col": String(i)});
      th.addEventListener("click", function () { sortBy(i, th); });
      head.appendChild(th);
    });
    table.appendChild(el("thead", {}, [head]));
    var tbody = el("tbody");
    table.appendChild(tbody);
    function cell(row, col) {
      var v = row[col], td = el("td");
      if (col === "diagnosis" && v) td.appendChild(badge(v, v, row.diagnosis_evidence || ""));
      else if (col === "status" && v) td.appendChild(badge(v, v));
      else if (col === "reason" && v && String(v).length > 160) { td.textContent = String(v).slice(0, 160) + " \u2026"; td.title = String(v); }
      else td.textContent = fmt(v);
      if (typeof v === "number") td.className = "num";
      if (col === "reason") td.className = "reason";
      return td;
    }
    function draw(rows) {
      tbody.textContent = "";
      rows.forEach(function (r) {
        var tr = el("tr", {"data-trial": String(r.trial)});
        D.columns.forEach(function (col) { tr.appendChild(cell(r, col)); });
        tbody.appendChild(tr);
      });
    }
    var order = {col: null, asc: true};
    function sortBy(i, th) {
      var col = D.columns[i];
      order.asc = order.col === col ? !order.asc : true;
      order.col = col;
      table.querySelectorAll("th").forEach(function (h) { h.className = ""; });
      th.className = order.asc ? "sorted-asc" : "sorted-desc";
      var rows = D.rows.slice().sort(function (a, b) {
        var x = a[col], y = b[col];
        if (x === null || x === undefined || x === "") return 1;
        if (y === null || y === undefined || y === "") return -1;
        var cmp = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
        return order.asc ? cmp : -cmp;
      });
      draw(rows);
    }
    draw(D.rows);
    root.appendChild(el("div", {cls: "scroll"}, [table]));
  })();

  // 2. quality versus cost
  (function () {
    var root = content("cost");
    root.appendChild(el("p", {cls: "note", text: "Complete trials; the Pareto front joins the trials that no other trial beats " +
      "on both quality and cost."}));
    var grid = el("div", {cls: "grid"});
    root.appendChild(grid);
    var drawn = ["pareto_trainable_params", "pareto_train_s", "pareto_peak_memory_mb"].filter(function (n) { return plot(grid, n); });
    if (!drawn.length) root.appendChild(el("p", {text: "No complete trial has both the objective and a cost recorded."}));
  })();

  // 3. what mattered
  (function () {
    var root = content("mattered");
    if (D.importance_warning) root.appendChild(el("p", {cls: "warning", text: D.importance_warning}));
    var grid = el("div", {cls: "grid"});
    root.appendChild(grid);
    plot(grid, "importance");
    plot(grid, "history");
  })();

  // 4. training curves: diagnosis per trial, overlaid curves, one trial at a time
  (function () {
    var root = content("curves");
    var table = el("table", {id: "diagnosis-table"}, [el("tr", {}, [el("th", {text: "trial"}), el("th", {text: "status"}),
      el("th", {text: "diagnosis"}), el("th", {text: "evidence"})])]);
    Object.keys(D.diagnoses).sort(function (a, b) { return a - b; }).forEach(function (n) {
      var d = D.diagnoses[n], row = D.rows.filter(function (r) { return String(r.trial) === n; })[0] || {};
      table.appendChild(el("tr", {}, [el("td", {text: n}), el("td", {}, [badge(row.status || "?", row.status)]),
        el("td", {}, [d.verdict ? badge(d.verdict, d.verdict) : el("span", {cls: "note", text: "no history"})]),
        el("td", {cls: "reason", text: d.evidence || ""})]));
    });
    root.appendChild(el("div", {cls: "scroll"}, [table]));
    root.appendChild(el("h3", {text: "All trials"}));
    var grid = el("div", {cls: "grid"});
    root.appendChild(grid);
    ["curve_train_loss", "curve_eval_loss", "curve_grad_norm", "curve_learning_rate", "curve_probe/pass@1"].forEach(function (n) { plot(grid, n); });
    var trials = Object.keys(D.curves).sort(function (a, b) { return a - b; });
    if (!trials.length) { root.appendChild(el("p", {text: "No trial has a training history."})); return; }
    root.appendChild(el("h3", {text: "One trial"}));
    var select = el("select", {id: "trial-select"});
    trials.forEach(function (n) { select.appendChild(el("option", {value: n, text: "trial " + n})); });
    var single = el("div", {"class": "plot", id: "single-trial"});
    var verdict = el("p", {id: "single-verdict"});
    root.appendChild(el("p", {}, [select, " "]));
    root.appendChild(verdict);
    root.appendChild(single);
    var metrics = [["train_loss", "eval_loss"], ["grad_norm"], ["learning_rate"]];
    function drawTrial(n) {
      var curves = D.curves[n], traces = [];
      metrics.forEach(function (group, i) {
        group.forEach(function (m) {
          var pts = curves[m] || [];
          traces.push({type: "scatter", mode: "lines+markers", name: m, xaxis: "x", yaxis: i ? "y" + (i + 1) : "y",
                       x: pts.map(function (p) { return p[0]; }), y: pts.map(function (p) { return p[1]; }), marker: {size: 4}});
        });
      });
      var d = D.diagnoses[n] || {};
      verdict.textContent = "";
      if (d.verdict) { verdict.appendChild(badge(d.verdict, d.verdict)); verdict.appendChild(document.createTextNode(" " + (d.evidence || ""))); }
      try {
        Plotly.react(single, traces, {height: 520, grid: {rows: 3, columns: 1, pattern: "coupled"}, margin: {l: 60, r: 20, t: 20, b: 40},
          yaxis: {title: {text: "loss"}}, yaxis2: {title: {text: "grad norm"}}, yaxis3: {title: {text: "learning rate"}, exponentformat: "e"},
          xaxis: {title: {text: "step"}}}, {displaylogo: false, responsive: true, displayModeBar: false});
      } catch (e) { note("trial plot failed: " + e.message); }
    }
    select.addEventListener("change", function () { drawTrial(select.value); });
    drawTrial(trials[0]);
  })();

  // 5. per problem
  (function () {
    var root = content("problems"), P = D.problems || {};
    if (!P.trials || !P.trials.length) { root.appendChild(el("p", {text: "No complete trial has per-problem results."})); return; }
    root.appendChild(el("p", {cls: "note", text: P.problems.length + " problems of " + P.benchmark + "; rows are the top " +
      P.trials.length + " trials, each cell that trial's pass rate on the problem."}));
    plot(root, "problems");
    var diff = P.diff;
    if (!diff) { root.appendChild(el("p", {text: "Only one trial has per-problem results: nothing to compare it with."})); return; }
    var pts = function (x) { return (x >= 0 ? "+" : "") + (100 * x).toFixed(1); };
    root.appendChild(el("p", {id: "problem-diff", text: "Best trial " + diff.best + " against " + diff.baseline + ": " + pts(diff.delta) +
      " points [" + pts(diff.interval[0]) + ", " + pts(diff.interval[1]) + "] (95%, paired over " + diff.n_problems + " problems); " +
      diff.gained.length + " problems gained, " + diff.lost.length + " lost."}));
    var grid = el("div", {cls: "grid"});
    [["gained", diff.gained], ["lost", diff.lost]].forEach(function (pair) {
      var t = el("table", {id: "problems-" + pair[0]}, [el("tr", {}, [el("th", {text: "problem " + pair[0]}),
        el("th", {text: "trial " + diff.best}), el("th", {text: "baseline"})])]);
      pair[1].slice(0, 50).forEach(function (g) {
        t.appendChild(el("tr", {}, [el("td", {text: g.task}), el("td", {cls: "num", text: fmt(g.best)}), el("td", {cls: "num", text: fmt(g.baseline)})]));
      });
      if (pair[1].length > 50) t.appendChild(el("tr", {}, [el("td", {text: "... and " + (pair[1].length - 50) + " more"})]));
      grid.appendChild(el("div", {}, [t]));
    });
    root.appendChild(grid);
  })();

  // 6. sample generations (untrusted model output: text only)
  (function () {
    var root = content("samples");
    if (!D.samples.length) { root.appendChild(el("p", {text: "No samples recorded."})); return; }
    root.appendChild(el("p", {cls: "note", text: "Model output, shown as text. The first sample of each of the top trials."}));
    D.samples.forEach(function (s) {
      var div = el("div", {cls: "sample"}, [el("h3", {text: s.task})]);
      div.appendChild(s.prompt === null ? el("p", {cls: "note", text: "prompt not recorded"}) : el("pre", {cls: "prompt", text: s.prompt}));
      s.completions.forEach(function (c) {
        var kind = c.verdict === "failed" ? "failed-test" : c.verdict;
        div.appendChild(el("p", {}, ["trial " + c.trial + " ", badge(c.verdict, kind, c.detail)]));
        div.appendChild(el("pre", {cls: "completion", text: c.completion}));
      });
      root.appendChild(div);
    });
  })();

  // 7. provenance
  (function () {
    var root = content("provenance");
    var t = el("table", {id: "provenance-table"});
    D.provenance.forEach(function (p) {
      var td = el("td", {cls: "reason"});
      if (p.values.length === 1) td.textContent = fmt(p.values[0].value);
      else p.values.forEach(function (v) { td.appendChild(el("div", {text: fmt(v.value) + "  (trials " + v.trials.join(", ") + ")"})); });
      t.appendChild(el("tr", {}, [el("th", {text: p.fact}), td]));
    });
    if (D.provenance.some(function (p) { return p.values.length > 1; })) {
      root.appendChild(el("p", {cls: "warning", text: "Some facts differ between trials (listed with their trials)."}));
    }
    root.appendChild(t);
  })();

  document.documentElement.setAttribute("data-ready", "1");
})();
