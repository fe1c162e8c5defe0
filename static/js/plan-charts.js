/* Plan charts (Chart.js 4). Data comes from <script type="application/json" id="plan-chart-data">,
   written by the server; the CSP forbids inline scripts, so this file draws the charts. */
(function () {
  "use strict";

  var KIND_COLORS = {
    reserved: "#16a34a", private: "#7c3aed", on_demand: "#2563eb", spot: "#f59e0b"
  };
  var CATEGORY_COLORS = {
    capex: "#7c3aed", commitments: "#16a34a", on_demand: "#2563eb", spot: "#f59e0b",
    power_colocation: "#0891b2", support_staff: "#64748b", after_horizon: "#a3a3a3"
  };
  var usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  var compactUsd = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1
  });
  var gpus = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function readData() {
    var el = document.getElementById("plan-chart-data");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function baseOptions() {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } }
    };
  }

  function capacityChart(canvas, data) {
    var options = baseOptions();
    options.scales = {
      x: { stacked: true, grid: { display: false } },
      y: { stacked: true, beginAtZero: true, title: { display: true, text: "GPUs" },
           ticks: { callback: function (v) { return gpus.format(v); } } }
    };
    options.plugins.tooltip = { callbacks: { label: function (c) {
      return c.dataset.label + ": " + gpus.format(c.parsed.y) + " GPUs";
    } } };
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.months,
        datasets: data.capacity.map(function (s) {
          return { label: s.label, data: s.data, backgroundColor: KIND_COLORS[s.key] || "#94a3b8", borderWidth: 0 };
        })
      },
      options: options
    });
  }

  function cumulativeChart(canvas, data) {
    var datasets = [{
      label: "This plan", data: data.cumulative.plan, borderColor: "#2563eb",
      backgroundColor: "rgba(37, 99, 235, .12)", fill: true, tension: 0.15, pointRadius: 2
    }];
    if (data.cumulative.all_on_demand) {
      datasets.push({
        label: "All on-demand", data: data.cumulative.all_on_demand, borderColor: "#b91c1c",
        borderDash: [6, 4], fill: false, tension: 0.15, pointRadius: 2
      });
    }
    var options = baseOptions();
    options.scales = {
      x: { grid: { display: false } },
      y: { beginAtZero: true, ticks: { callback: function (v) { return compactUsd.format(v); } } }
    };
    options.plugins.tooltip = { callbacks: { label: function (c) {
      return c.dataset.label + ": " + usd.format(c.parsed.y);
    } } };
    return new window.Chart(canvas, { type: "line", data: { labels: data.months, datasets: datasets }, options: options });
  }

  function categoryChart(canvas, data) {
    var options = baseOptions();
    options.indexAxis = "y";
    options.plugins.legend = { display: false };
    options.scales = {
      x: { beginAtZero: true, ticks: { callback: function (v) { return compactUsd.format(v); } } },
      y: { grid: { display: false } }
    };
    options.plugins.tooltip = { callbacks: { label: function (c) { return usd.format(c.parsed.x); } } };
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.categories.map(function (c) { return c.label; }),
        datasets: [{
          label: "Cost", data: data.categories.map(function (c) { return c.value; }),
          backgroundColor: data.categories.map(function (c) { return CATEGORY_COLORS[c.key] || "#94a3b8"; }),
          borderWidth: 0
        }]
      },
      options: options
    });
  }

  function draw() {
    var data = readData();
    if (!data || typeof window.Chart !== "function") { return; }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#334155";
    var charts = [
      ["chart-capacity", capacityChart], ["chart-cumulative", cumulativeChart], ["chart-categories", categoryChart]
    ];
    charts.forEach(function (pair) {
      var canvas = document.getElementById(pair[0]);
      if (canvas && !window.Chart.getChart(canvas)) { pair[1](canvas, data); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
