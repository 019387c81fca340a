/* Patron console: progressive enhancements and dashboard charts.
 * Loaded from /static only; chart data comes from <script type="application/json">. */
(function () {
  "use strict";

  var SEGMENT_COLOURS = {
    champions: "#16a34a",
    loyal_customers: "#22c55e",
    potential_loyalists: "#14b8a6",
    new_customers: "#0ea5e9",
    promising: "#6366f1",
    need_attention: "#eab308",
    about_to_sleep: "#f59e0b",
    at_risk: "#f97316",
    cant_lose: "#dc2626",
    hibernating: "#94a3b8"
  };
  var PRIMARY = "#4f46e5";
  var ACCENT = "#f59e0b";

  function autosubmit() {
    var fields = document.querySelectorAll("select[data-autosubmit]");
    Array.prototype.forEach.call(fields, function (field) {
      field.addEventListener("change", function () {
        var form = field.form;
        if (!form) { return; }
        if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
      });
    });
  }

  function showMessage(container, text) {
    container.textContent = "";
    var message = document.createElement("p");
    message.className = "chart-message";
    message.textContent = text;
    container.appendChild(message);
  }

  function formatters(locale) {
    var whole = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
    var money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
    var percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
    return {
      whole: function (v) { return whole.format(v); },
      money: function (v) { return money.format(v); },
      compact: function (v) { return compact.format(v); },
      percent: function (v) { return percent.format(v); }
    };
  }

  function trendOption(trend, fmt) {
    return {
      color: [PRIMARY, ACCENT],
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        valueFormatter: function (v) { return fmt.money(v); }
      },
      legend: { top: 0, left: "center", itemGap: 24 },
      grid: { left: 8, right: 8, top: 64, bottom: 4, containLabel: true },
      xAxis: { type: "category", data: trend.periods, axisTick: { alignWithLabel: true } },
      yAxis: [
        { type: "value", name: trend.gmvLabel, nameTextStyle: { align: "left" },
          axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
        { type: "value", name: trend.ordersLabel, nameTextStyle: { align: "right" },
          axisLabel: { formatter: fmt.compact }, splitLine: { show: false } }
      ],
      series: [
        { name: trend.gmvLabel, type: "bar", yAxisIndex: 0, data: trend.gmv, barMaxWidth: 28,
          itemStyle: { borderRadius: [4, 4, 0, 0] } },
        { name: trend.ordersLabel, type: "line", yAxisIndex: 1, data: trend.orders, smooth: true,
          symbolSize: 7, lineStyle: { width: 3 },
          tooltip: { valueFormatter: function (v) { return fmt.whole(v); } } }
      ]
    };
  }

  function segmentOption(segments, fmt) {
    var rows = segments.keys.map(function (key, i) {
      return { key: key, label: segments.labels[i], members: segments.members[i], share: segments.shares[i] };
    });
    rows.sort(function (a, b) { return a.members - b.members; });
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var row = rows[p.dataIndex];
          return row.label + ": " + fmt.whole(row.members) + " (" + fmt.percent(row.share) + ")";
        }
      },
      grid: { left: 8, right: 72, top: 8, bottom: 4, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      yAxis: { type: "category", data: rows.map(function (r) { return r.label; }), axisTick: { show: false } },
      series: [{
        name: segments.seriesLabel,
        type: "bar",
        barMaxWidth: 22,
        data: rows.map(function (r) {
          return { value: r.members, itemStyle: { color: SEGMENT_COLOURS[r.key] || PRIMARY, borderRadius: [0, 4, 4, 0] } };
        }),
        label: {
          show: true,
          position: "right",
          formatter: function (p) { return fmt.percent(rows[p.dataIndex].share); },
          color: "#4b5563"
        }
      }]
    };
  }

  function drawCharts() {
    var source = document.getElementById("dashboard-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent || "{}");
    var trendBox = document.getElementById("trend-chart");
    var segmentBox = document.getElementById("segment-chart");
    var boxes = [trendBox, segmentBox].filter(Boolean);
    if (typeof window.echarts === "undefined") {
      boxes.forEach(function (box) { showMessage(box, box.getAttribute("data-unavailable") || ""); });
      return;
    }
    var fmt = formatters(data.locale || "en");
    var charts = [];
    if (trendBox) {
      trendBox.textContent = "";
      charts.push(window.echarts.init(trendBox, null, { renderer: "canvas" }));
      charts[charts.length - 1].setOption(trendOption(data.trend, fmt));
    }
    if (segmentBox) {
      segmentBox.textContent = "";
      charts.push(window.echarts.init(segmentBox, null, { renderer: "canvas" }));
      charts[charts.length - 1].setOption(segmentOption(data.segments, fmt));
    }
    window.addEventListener("resize", function () {
      charts.forEach(function (chart) { chart.resize(); });
    });
  }

  function ready(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  ready(function () {
    autosubmit();
    drawCharts();
  });
})();
