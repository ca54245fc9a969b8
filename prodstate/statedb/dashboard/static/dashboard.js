/* The dashboard's own script (served from the package; the page allows no inline script).
   It draws each chart with uPlot from the JSON in its data-chart attribute, keeps folded
   fields that were opened open across the page's refreshes (htmx swaps the live part),
   and shows when a refresh fails. */
(function () {
  "use strict";

  var COLORS = ["#d1495b", "#2e86ab", "#e09f3e", "#3a7d44", "#8e6c8a", "#00798c", "#6c757d"];

  function hour(ts) {
    return new Date(ts * 1000).toISOString().slice(11, 16);
  }

  function day(ts) {
    return new Date(ts * 1000).toISOString().slice(5, 10);
  }

  /* Each series is drawn as bars stacked on the ones before it: the running totals are
     drawn from the tallest down, so each shows its own band; the legend shows each
     series' own count. */
  function stacked(doc) {
    var totals = doc.x.map(function () { return 0; });
    return doc.series.map(function (s) {
      totals = totals.map(function (t, i) { return t + s.values[i]; });
      return totals.slice();
    });
  }

  function options(doc, width, top) {
    var series = [{ label: "hour (UTC)", value: function (u, v) { return v == null ? "-" : day(v) + " " + hour(v); } }];
    for (var k = doc.series.length - 1; k >= 0; k--) {
      (function (k) {
        var color = doc.series[k].color || COLORS[k % COLORS.length];
        series.push({
          label: doc.series[k].label,
          stroke: color,
          fill: color + "cc",
          width: 0,
          paths: uPlot.paths.bars({ size: [0.8, 40], align: 1 }),
          points: { show: false },
          value: function (u, v, si, i) { return i == null ? "-" : doc.series[k].values[i]; },
        });
      })(k);
    }
    return {
      width: width,
      height: 190,
      series: series,
      scales: {
        x: { time: true, range: function (u, min, max) { return [min, max + 3600]; } },
        y: { range: function () { return [0, Math.max(2, top)]; } },
      },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (t) { return hour(t); }); } },
        { label: doc.unit + " per hour", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], size: 50 },
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
  }

  function draw(root) {
    if (typeof uPlot === "undefined") {
      return;
    }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var doc;
      try {
        doc = JSON.parse(el.getAttribute("data-chart"));
      } catch (err) {
        return;
      }
      var width = Math.max(240, Math.floor(el.getBoundingClientRect().width));
      var sums = stacked(doc);
      var top = sums.length ? Math.max.apply(null, sums[sums.length - 1]) : 0;
      var data = [doc.x].concat(sums.reverse());
      el.replaceChildren();
      new uPlot(options(doc, width, top), data, el);
    });
  }

  var opened = [];

  document.addEventListener("htmx:beforeSwap", function (event) {
    opened = Array.prototype.map.call(
      event.detail.target.querySelectorAll("details[open][id]"),
      function (d) { return d.id; }
    );
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    opened.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) {
        d.open = true;
      }
    });
    draw(event.detail.target);
  });

  function connection(ok) {
    var el = document.getElementById("connection");
    if (!el) {
      return;
    }
    el.textContent = ok ? "live" : "offline, retrying";
    el.classList.toggle("lost", !ok);
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    connection(event.detail.successful || (event.detail.xhr && event.detail.xhr.status < 500));
  });
  document.addEventListener("htmx:sendError", function () { connection(false); });

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () { draw(document); }, 200);
  });

  draw(document);
})();
