/* /compare charts (Chart.js 4): monthly and cumulative cost of each compared plan on one
   chart each. Data: <script type="application/json" id="compare-chart-data">, written by
   the server (the CSP forbids inline scripts). Each design gets its colour and dash, so
   the lines stay apart in greyscale too. */
(function () {
  "use strict";

  var COLORS = ["#2563eb", "#16a34a", "#b91c1c", "#7c3aed"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];
  var usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  var compactUsd = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1
  });

  function readData() {
    var el = document.getElementById("compare-chart-data");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function lineChart(canvas, data, key) {
    return new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.months,
        datasets: data.series.map(function (s) {
          var i = s.index % COLORS.length;
          return {
            label: s.label, data: s[key], borderColor: COLORS[i], backgroundColor: COLORS[i],
            borderDash: DASHES[i], borderWidth: 2, pointRadius: data.months.length > 24 ? 0 : 2,
            tension: 0.15, spanGaps: false, fill: false
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) {
            return c.dataset.label + ": " + (c.parsed.y === null ? "—" : usd.format(c.parsed.y));
          } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, ticks: { callback: function (v) { return compactUsd.format(v); } } }
        }
      }
    });
  }

  function draw() {
    var data = readData();
    if (!data || !data.series || typeof window.Chart !== "function") { return; }
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = "#334155";
    [["chart-compare-monthly", "monthly"], ["chart-compare-cumulative", "cumulative"]].forEach(function (pair) {
      var canvas = document.getElementById(pair[0]);
      if (canvas && !window.Chart.getChart(canvas)) { lineChart(canvas, data, pair[1]); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
