// Metric charts with uPlot: one chart per metric, one series per run; step, time since the
// run started, or wall-clock time on x; a log scale on y. Data comes from the page itself
// (#chart-data, a run's page) or from each chart's data-src (compare).
"use strict";
(() => {
  const GOLDEN = 137.508;
  const plots = {};
  const state = { expected: 0, drawn: 0, failed: 0, plots };
  window.mlregCharts = state;

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const dark = () => window.matchMedia("(prefers-color-scheme: dark)").matches;
  const color = (i) => `hsl(${(i * GOLDEN) % 360}, ${dark() ? 75 : 70}%, ${dark() ? 62 : 42}%)`;

  // One run's points as [x, y] columns, ascending in x, one value per x (the last logged).
  function columns(run, mode, log) {
    const n = run.value.length;
    const t0 = run.time.length ? Math.min(...run.time) : 0;
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

  function draw(figure, doc) {
    const mode = figure.dataset.x || "step";
    const log = figure.dataset.log === "1";
    const target = figure.querySelector(".plot");
    const old = plots[figure.dataset.key];
    if (old) old.destroy();
    target.textContent = "";
    const tables = doc.runs.map((run) => columns(run, mode, log));
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
        ...doc.runs.map((run, i) => ({
          label: run.name,
          stroke: color(i),
          width: 1.5,
          spanGaps: true,
          points: { show: run.value.length <= 1 ? true : undefined },
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
    figure.dataset.series = String(doc.runs.length);
  }

  const cache = new Map();
  async function load(figure, embedded) {
    const key = figure.dataset.key;
    if (!cache.has(key)) {
      if (embedded) {
        cache.set(key, {
          key,
          runs: embedded.runs.map((r) => ({ ...r, ...embedded.metrics[key] })),
        });
      } else {
        const response = await fetch(figure.dataset.src, { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`${response.status} ${(await response.json()).message}`);
        cache.set(key, await response.json());
      }
    }
    draw(figure, cache.get(key));
  }

  async function drawAll(figures, embedded) {
    state.expected = figures.length;
    state.drawn = 0;
    let next = 0;
    const worker = async () => {
      while (next < figures.length) {
        const figure = figures[next++];
        try {
          await load(figure, embedded);
          state.drawn++;
        } catch (err) {
          state.failed++;
          const p = document.createElement("p");
          p.className = "chart-error";
          p.textContent = `Could not draw ${figure.dataset.key}: ${err.message}`;
          figure.querySelector(".plot").replaceChildren(p);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, figures.length) }, worker));
    performance.mark("mlreg-charts-drawn");
    document.documentElement.dataset.chartsDrawn = String(state.drawn);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const figures = [...document.querySelectorAll("figure.chart")];
    if (!figures.length || typeof uPlot === "undefined") return;
    const source = document.getElementById("chart-data");
    const embedded = source ? JSON.parse(source.textContent) : null;
    document.querySelectorAll(".swatch[data-series]").forEach((s) => {
      s.style.background = color(Number(s.dataset.series));
    });
    drawAll(figures, embedded);

    // Compare: the x axis and log scale redraw at once, and the URL follows (shareable).
    const options = document.getElementById("chart-options");
    if (options) {
      options.addEventListener("change", () => {
        const x = options.elements.x.value;
        const log = options.elements.log.checked ? "1" : "0";
        for (const f of figures) { f.dataset.x = x; f.dataset.log = log; }
        const url = new URL(window.location.href);
        url.searchParams.set("x", x);
        if (log === "1") url.searchParams.set("log", "1"); else url.searchParams.delete("log");
        history.replaceState(null, "", url);
        drawAll(figures, embedded);
      });
    }
    // Follow the system's light or dark mode, and the page's width.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      document.querySelectorAll(".swatch[data-series]").forEach((s) => {
        s.style.background = color(Number(s.dataset.series));
      });
      drawAll(figures, embedded);
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
