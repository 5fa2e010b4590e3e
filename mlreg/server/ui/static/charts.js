// Metric charts with uPlot: one chart per metric, one series per run; step, time since the
// run started, or wall-clock time on x; a log scale on y. Data comes from the page itself
// (#chart-data, a run's page) or from #charts' data-src (compare), a few metrics a request in
// page order, so the first charts are drawn while the rest still load.
"use strict";
(() => {
  const GOLDEN = 137.508;
  const FIRST = 2; // metrics in the first request: the top of the page is drawn soonest
  const BATCH = 4; // metrics per request after that
  const PARALLEL = 2; // requests at once (the server has two workers by default)
  // A page with more charts than this draws each when it comes near the screen: a run with
  // hundreds of metrics would otherwise block the page for seconds drawing what is unseen.
  const LAZY = 12;
  const plots = {};
  const state = { expected: 0, drawn: 0, failed: 0, plots };
  window.mlregCharts = state;

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const dark = () => window.matchMedia("(prefers-color-scheme: dark)").matches;
  const color = (i) => `hsl(${(i * GOLDEN) % 360}, ${dark() ? 75 : 70}%, ${dark() ? 62 : 42}%)`;

  // One run's points as [x, y] columns, ascending in x, one value per x (the last logged).
  // "relative": seconds since the run started (its first point when the start is unknown).
  function columns(run, mode, log, start) {
    const n = run.value.length;
    const t0 = start ?? (run.time.length ? Math.min(...run.time) : 0);
    const pts = [];
    for (let i = 0; i < n; i++) {
      let x = run.step[i];
      if (mode === "relative") x = (run.time[i] - t0) / 1000;
      else if (mode === "wall") x = run.time[i] / 1000;
      let y = run.value[i];
      if (log && y !== null && y <= 0) y = null;
      pts.push([x, y]);
    }
    pts.sort((a, b) => a[0] - b[0]);
    const xs = [];
    const ys = [];
    for (const [x, y] of pts) {
      if (xs.length && xs[xs.length - 1] === x) ys[ys.length - 1] = y;
      else { xs.push(x); ys.push(y); }
    }
    return [xs, ys];
  }

  // doc: {runs: [{run_id, name, start_time}], metrics: {key: [one series per run]}}
  function draw(figure, runs, seriesList) {
    const mode = figure.dataset.x || "step";
    const log = figure.dataset.log === "1";
    const target = figure.querySelector(".plot");
    const old = plots[figure.dataset.key];
    if (old) old.destroy();
    target.textContent = "";
    const tables = seriesList.map((s, i) => columns(s, mode, log, runs[i].start_time));
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const fg = css("--fg");
    const grid = css("--line");
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const xLabel = { step: "step", relative: "seconds since start", wall: "" }[mode];
    const opts = {
      width: Math.max(target.clientWidth, 280),
      height: 260,
      scales: { x: { time: mode === "wall" }, y: log ? { distr: 3 } : {} },
      axes: [{ ...axis, label: xLabel }, { ...axis, size: 60 }],
      legend: { live: true },
      cursor: { focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      series: [
        { label: xLabel || "time" },
        ...runs.map((run, i) => ({
          label: run.name,
          stroke: color(i),
          width: 1.5,
          spanGaps: true,
          points: { show: seriesList[i].value.length <= 1 ? true : undefined },
        })),
      ],
    };
    const plot = new uPlot(opts, data, target);
    plots[figure.dataset.key] = plot;
    // The legend toggles series on click; make it work from the keyboard too.
    plot.root.querySelectorAll(".u-legend tr.u-series").forEach((row, i) => {
      if (i === 0) return;
      row.tabIndex = 0;
      row.setAttribute("role", "button");
      row.setAttribute("aria-pressed", "true");
      row.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          (row.querySelector("th") || row).click();  // uPlot listens on the label cell
          row.setAttribute("aria-pressed", String(!row.classList.contains("u-off")));
        }
      });
    });
    figure.dataset.series = String(runs.length);
  }

  let runs = null;
  const cache = new Map(); // key -> series per run

  function fail(figure, err) {
    state.failed++;
    const p = document.createElement("p");
    p.className = "chart-error";
    p.textContent = `Could not draw ${figure.dataset.key}: ${err.message}`;
    figure.querySelector(".plot").replaceChildren(p);
  }

  async function fetchBatch(src, figures) {
    const url = new URL(src, window.location.href);
    for (const f of figures) url.searchParams.append("key", f.dataset.key);
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const doc = await response.json();
    if (!response.ok) throw new Error(`${response.status} ${doc.message}`);
    runs = doc.runs;
    for (const [key, list] of Object.entries(doc.metrics)) cache.set(key, list);
  }

  let observer = null;

  // Draw each figure when it comes within a screen of the viewport; resolves once the charts
  // on screen are drawn (the observer's first answer covers every figure).
  function drawWhenSeen(figures, show) {
    if (observer) observer.disconnect();
    return new Promise((resolve) => {
      let first = true;
      observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          show(entry.target);
        }
        if (first) { first = false; resolve(); }
      }, { rootMargin: "100% 0px" });
      figures.forEach((f) => observer.observe(f));
    });
  }

  async function drawAll(figures, embedded, src) {
    state.expected = figures.length;
    state.drawn = 0;
    if (embedded) {
      runs = embedded.runs;
      for (const [key, list] of Object.entries(embedded.metrics)) cache.set(key, list);
    }
    const show = (figure) => {
      try {
        draw(figure, runs, cache.get(figure.dataset.key));
        state.drawn++;
        if (!performance.getEntriesByName("mlreg-first-chart").length) {
          performance.mark("mlreg-first-chart");
        }
      } catch (err) {
        fail(figure, err);
      }
    };
    const missing = figures.filter((f) => !cache.has(f.dataset.key));
    const ready = figures.filter((f) => cache.has(f.dataset.key));
    if (ready.length > LAZY && "IntersectionObserver" in window) await drawWhenSeen(ready, show);
    else ready.forEach(show);
    const batches = missing.length ? [missing.slice(0, FIRST)] : [];
    for (let i = FIRST; i < missing.length; i += BATCH) batches.push(missing.slice(i, i + BATCH));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++];
        try {
          await fetchBatch(src, batch);
          batch.forEach(show);
        } catch (err) {
          batch.forEach((f) => fail(f, err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, batches.length) }, worker));
    performance.mark("mlreg-charts-drawn");
    document.documentElement.dataset.chartsDrawn = String(state.drawn);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const figures = [...document.querySelectorAll("figure.chart")];
    if (!figures.length || typeof uPlot === "undefined") return;
    const source = document.getElementById("chart-data");
    const embedded = source ? JSON.parse(source.textContent) : null;
    const src = document.getElementById("charts").dataset.src;
    document.querySelectorAll(".swatch[data-series]").forEach((s) => {
      s.style.background = color(Number(s.dataset.series));
    });
    drawAll(figures, embedded, src);

    // Compare: the x axis and log scale redraw at once, and the URL follows (shareable).
    const options = document.getElementById("chart-options");
    if (options) {
      options.addEventListener("change", (event) => {
        if (event.target.name === "metric") return; // chosen metrics apply with their button
        const x = options.elements.x.value;
        const log = options.elements.log.checked ? "1" : "0";
        for (const f of figures) { f.dataset.x = x; f.dataset.log = log; }
        const url = new URL(window.location.href);
        url.searchParams.set("x", x);
        if (log === "1") url.searchParams.set("log", "1"); else url.searchParams.delete("log");
        history.replaceState(null, "", url);
        drawAll(figures, embedded, src);
      });
    }
    // Follow the system's light or dark mode, and the page's width.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      document.querySelectorAll(".swatch[data-series]").forEach((s) => {
        s.style.background = color(Number(s.dataset.series));
      });
      drawAll(figures, embedded, src);
    });
    let width = window.innerWidth;
    window.addEventListener("resize", () => {
      if (Math.abs(window.innerWidth - width) < 40) return;
      width = window.innerWidth;
      for (const f of figures) {
        const plot = plots[f.dataset.key];
        if (plot) plot.setSize({ width: Math.max(f.querySelector(".plot").clientWidth, 280), height: 260 });
      }
    });
  });
})();
